# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""``iotbox-sim``: N simulated IoT boxes starting up against an Odoo server.

Each box does what the genuine box software does at start:

1. ``POST /iot/setup`` with the bytes the 18.0 box sends (``json.dumps`` of
   ``{"params": {"iot_box": ..., "devices": ...}}``, ``Content-type:
   application/json``, ``Accept: text/plain``);
2. ``POST /iot/get_handlers``: an 18.0-style box sends the multipart form
   fields ``mac`` and ``auto``; a 19-style box sends ``identifier`` and
   ``auto`` form-encoded, plus ``If-None-Match`` with the ETag it kept from its
   previous download (kept in ``--state-file`` between runs).

It prints one line per box and, for load runs (``--repeat`` > 1 or
``--load``), requests per second and p50/p95/p99 latency per endpoint.

With ``--stay-on`` the boxes then stay on until Ctrl-C: each box whose check-in
answered a channel keeps its websocket to the bus open and subscribed, as the
genuine box of its style does (``bus.py``). Boxes named with ``--off`` are
switched off: they neither start nor connect. ``--restart-every`` starts the
boxes that are on again, one after the other, so that they download the
bundle they are due now.

``--broken-driver FILE`` with ``--broken-boxes NAMES``: when one of these boxes
downloads a bundle holding FILE, the driver fails to load on it as on the
genuine 18.0 box (``boxlog.py``): it posts the two error lines to
``/iot/log`` and checks in again without the devices that driver served.
"""

import argparse
import io
import json
import os
import signal
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import requests

from .boxlog import DEFAULT_ERROR, LOG, BrokenDriver, batch_chunks, load_error_lines
from .bus import RECONNECT, keep_connected, stop_all, wait_connected
from .fleet import percentile, plan_fleet, setup_payload

SETUP = "/iot/setup"
HANDLERS = "/iot/get_handlers"
VERSION_INFO = "/web/webclient/version_info"
TIMEOUT = 30


class Call(NamedTuple):
    endpoint: str
    status: int  # 0 when the server could not be reached
    seconds: float
    outcome: str
    ok: bool
    channel: str = ""  # /iot/setup only: the bus channel it answered
    entries: tuple = ()  # /iot/get_handlers only: the names in the zip it got


class BoxResult(NamedTuple):
    box: object  # fleet.BoxSpec
    setup: Call
    handlers: Call | None
    # A driver of the bundle failed to load (--broken-driver): the box's log
    # batch, then its check-in without the devices of that driver.
    log: Call | None = None
    recheck: Call | None = None

    @property
    def calls(self):
        return [call for call in (self.setup, self.handlers, self.log, self.recheck) if call]


class Report(NamedTuple):
    results: list  # BoxResult of the last round, in box order
    calls: list  # every Call of every round
    seconds: float  # wall time of the whole run
    server_series: str
    etags: dict | None = None  # the 19-style boxes' ETags after the run

    @property
    def ok(self):
        return all(call.ok for call in self.calls)

    def stats(self):
        """``{endpoint: {count, errors, rps, p50, p95, p99}}``, latencies in ms."""
        stats = {}
        for endpoint in (SETUP, HANDLERS):
            calls = [call for call in self.calls if call.endpoint == endpoint]
            if not calls:
                continue
            latencies = [call.seconds * 1000 for call in calls]
            stats[endpoint] = {
                "count": len(calls),
                "errors": sum(not call.ok for call in calls),
                "rps": len(calls) / self.seconds if self.seconds else 0.0,
                **{f"p{p}": percentile(latencies, p) for p in (50, 95, 99)},
            }
        return stats


# ----------------------------------------------------------------------
# One box
# ----------------------------------------------------------------------


def _post(session, url, endpoint, **kwargs):
    started = time.perf_counter()
    try:
        response = session.post(url + endpoint, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    except requests.RequestException as error:
        return None, time.perf_counter() - started, f"unreachable ({type(error).__name__})"
    return response, time.perf_counter() - started, ""


def check_in(session, url, box, token):
    """``POST /iot/setup`` as the genuine 18.0 box sends it."""
    body = json.dumps(setup_payload(box, token)).encode("utf8")
    headers = {"Content-type": "application/json", "Accept": "text/plain"}
    response, seconds, error = _post(session, url, SETUP, data=body, headers=headers)
    if response is None:
        return Call(SETUP, 0, seconds, error, False)
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if response.status_code == 200 and isinstance(reply, dict) and "result" in reply:
        channel = reply["result"] if isinstance(reply["result"], str) else ""
        return Call(SETUP, 200, seconds, f"answered 200 (channel {reply['result']!r})", True, channel)
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        message = reply["error"].get("message", "")
        return Call(SETUP, response.status_code, seconds, f"error {response.status_code}: {message}", False)
    return Call(SETUP, response.status_code, seconds, f"error {response.status_code}", False)


def get_handlers(session, url, box, etag=None, auto=True):
    """``POST /iot/get_handlers`` as the box of ``box.style`` sends it.

    Returns ``(Call, etag)``: the ETag to keep (19-style; ``etag`` unchanged
    when nothing new came).
    """
    if box.style == "18":
        # urllib3's ``fields=`` on a POST: multipart/form-data, values as text.
        kwargs = {"files": {"mac": (None, box.mac), "auto": (None, str(auto))}}
    else:
        kwargs = {"data": {"identifier": box.identifier, "auto": str(auto)}}
        if etag:
            kwargs["headers"] = {"If-None-Match": etag}
    response, seconds, error = _post(session, url, HANDLERS, **kwargs)
    if response is None:
        return Call(HANDLERS, 0, seconds, error, False), etag
    status = response.status_code
    if status == 304:
        return Call(HANDLERS, status, seconds, "not modified (304)", True), etag
    if status == 404:
        return Call(HANDLERS, status, seconds, "no handlers route on the server (404)", False), etag
    if status == 401 and box.style == "19":
        return Call(HANDLERS, status, seconds, "refused (401)", True), etag
    if status != 200:
        return Call(HANDLERS, status, seconds, f"error {status}", False), etag
    if not response.content:
        return Call(HANDLERS, status, seconds, "refused (200, empty body)", True), etag
    try:
        with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
            entries = tuple(bundle.namelist())
    except zipfile.BadZipFile:
        return Call(HANDLERS, status, seconds, "error: the body is not a zip", False), etag
    outcome = f"downloaded {len(entries)} files ({len(response.content)} bytes)"
    if box.style == "19":
        # The genuine 19 box keeps the ETag without its quotes and sends it back bare.
        etag = (response.headers.get("ETag") or "").strip('"') or None
    return Call(HANDLERS, status, seconds, outcome, True, entries=entries), etag


def post_log(session, url, box, lines):
    """``POST /iot/log`` as the 18.0 box's ``AsyncHTTPHandler`` sends a batch
    (a streamed body, see ``boxlog.py``)."""
    response, seconds, error = _post(session, url, LOG, data=batch_chunks(box.mac, lines))
    if response is None:
        return Call(LOG, 0, seconds, error, False)
    if response.status_code != 200:
        return Call(LOG, response.status_code, seconds, f"error {response.status_code}", False)
    return Call(LOG, 200, seconds, f"sent {len(lines)} lines", True)


def start_box(session, url, box, token, etag=None, handlers=True, broken=None):
    """What the box does at start: check in, then download its handlers.

    When ``broken`` (a :class:`BrokenDriver`) fails on this box and the
    bundle holds its file, the box logs the failure to ``/iot/log`` and
    checks in again without the devices of that driver.
    """
    setup = check_in(session, url, box, token)
    if not handlers:
        return BoxResult(box, setup, None), etag
    call, etag = get_handlers(session, url, box, etag)
    if broken is None or not broken.breaks(box, call.entries):
        return BoxResult(box, setup, call), etag
    log = post_log(session, url, box, load_error_lines(broken.file, broken.error))
    devices = broken.remaining_devices(box.devices)
    recheck = check_in(session, url, box._replace(devices=devices), token)
    lost = ", ".join(sorted(set(box.devices) - set(devices))) or "no device"
    recheck = recheck._replace(outcome=f"{recheck.outcome}, without {lost}")
    return BoxResult(box, setup, call, log, recheck), etag


# ----------------------------------------------------------------------
# The fleet
# ----------------------------------------------------------------------


def server_series(url, session=None):
    """The server's series, asked as the box asks it (``""`` when unknown)."""
    session = session or requests.Session()
    try:
        response = session.post(
            url + VERSION_INFO, data="{}", headers={"Content-type": "application/json"}, timeout=TIMEOUT
        )
        return response.json()["result"]["server_serie"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return ""


def load_state(path):
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def save_state(path, state):
    path = Path(path)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(temp, path)


def run(
    url,
    token,
    boxes=20,
    seed=0,
    style="mix",
    concurrency=8,
    state_file=None,
    repeat=1,
    handlers=True,
    series=None,
    off=(),
    broken=None,
):
    """Start ``boxes`` simulated boxes ``repeat`` times against ``url``; returns a :class:`Report`.

    The boxes named in ``off`` are switched off: they keep their identity but do nothing.
    ``broken`` (a :class:`~iotbox_sim.boxlog.BrokenDriver`) names a driver that
    fails to load on some boxes; ``ValueError`` when one of them is not in the
    fleet or not 18.0-style (the box whose log lines it sends).
    """
    url = url.rstrip("/")
    series = series or server_series(url) or "18.0"
    planned = plan_fleet(boxes, seed=seed, style=style, server_series=series)
    check_broken(broken, planned)
    fleet = [box for box in planned if box.name not in off]
    state = load_state(state_file) if state_file else {}
    etags = dict(state.get("etags", {}))
    local = threading.local()
    lock = threading.Lock()
    calls = []

    def one(box):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        with lock:
            etag = etags.get(box.identifier)
        result, etag = start_box(session, url, box, token, etag, handlers=handlers, broken=broken)
        with lock:
            if etag:
                etags[box.identifier] = etag
            calls.extend(result.calls)
        return result

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for __ in range(max(1, repeat)):
            results = list(pool.map(one, fleet))
    seconds = time.perf_counter() - started
    if state_file:
        save_state(state_file, {**state, "etags": etags})
    return Report(results, calls, seconds, series, etags)


def check_broken(broken, fleet):
    """``ValueError`` unless every box ``broken`` names is an 18.0-style box of ``fleet``."""
    if broken is None:
        return
    styles = {box.name: box.style for box in fleet}
    unknown = sorted(name for name in broken.boxes if name not in styles)
    if unknown:
        raise ValueError(f"--broken-boxes: no such box in the fleet: {', '.join(unknown)}")
    others = sorted(name for name in broken.boxes if styles[name] != "18")
    if others:
        # The 19 box logs a failed driver otherwise, and sends its batch with its identifier.
        raise ValueError(f"--broken-boxes: only 18.0-style boxes break (not {', '.join(others)})")


def result_line(result):
    box = result.box
    handlers = result.handlers.outcome if result.handlers else "not asked"
    line = f"{box.name:<28} {box.style}-style {box.version:<28} setup: {result.setup.outcome}; handlers: {handlers}"
    if result.log:
        line += f"; a driver failed to load: /iot/log {result.log.outcome}; check-in again: {result.recheck.outcome}"
    return line


def print_report(report, load=False, out=print):
    for result in report.results:
        out(result_line(result))
    failed = [result.box.name for result in report.results if not result.setup.ok]
    out(f"{len(report.results)} boxes (server series {report.server_series}), {len(failed)} failed check-ins")
    if load:
        out(f"{len(report.calls)} requests in {report.seconds:.2f} s")
        for endpoint, values in report.stats().items():
            out(
                f"{endpoint:<18} {values['count']:>6} requests {values['errors']:>4} errors "
                f"{values['rps']:8.1f} req/s  p50 {values['p50']:7.1f} ms  "
                f"p95 {values['p95']:7.1f} ms  p99 {values['p99']:7.1f} ms"
            )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="iotbox-sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8069", help="Odoo server (default: %(default)s)")
    parser.add_argument(
        "--token",
        default=os.environ.get("IOTBOX_SIM_TOKEN", ""),
        help="pairing token (system parameter iot_token; default: $IOTBOX_SIM_TOKEN)",
    )
    parser.add_argument("--boxes", type=int, default=20, help="number of boxes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same boxes (default: %(default)s)")
    parser.add_argument("--style", choices=("mix", "18", "19"), default="mix", help="protocol style of the boxes")
    parser.add_argument("--concurrency", type=int, default=8, help="boxes starting at once (default: %(default)s)")
    parser.add_argument("--state-file", help="JSON file keeping the 19-style boxes' ETags between runs")
    parser.add_argument("--repeat", type=int, default=1, help="start every box this many times (load run)")
    parser.add_argument("--load", action="store_true", help="print requests/s and latency percentiles")
    parser.add_argument("--series", help="server series to simulate against (default: ask the server)")
    parser.add_argument("--no-handlers", dest="handlers", action="store_false", help="check in only")
    parser.add_argument("--stay-on", action="store_true", help="then keep each box's bus websocket open until Ctrl-C")
    parser.add_argument("--off", default="", help="comma-separated names of boxes that are off: they do nothing")
    parser.add_argument("--db", help="database name 19-style boxes log in to before connecting (GET /web/login?db=)")
    parser.add_argument(
        "--reconnect", type=float, default=RECONNECT, help="seconds before a box reconnects (default: %(default)s)"
    )
    parser.add_argument(
        "--restart-every",
        type=float,
        default=0,
        metavar="SECONDS",
        help="with --stay-on: each box that is on starts again (check-in, handlers download) every SECONDS, "
        "one box after the other (default: never)",
    )
    parser.add_argument(
        "--broken-driver",
        metavar="FILE",
        help="a handler file name that fails to load on the --broken-boxes: when such a box downloads a bundle "
        "holding it, it logs the failure to /iot/log and checks in again without the --broken-devices",
    )
    parser.add_argument(
        "--broken-boxes", default="", metavar="NAMES", help="comma-separated names of 18.0-style boxes (default: none)"
    )
    parser.add_argument(
        "--broken-devices",
        default="scale",
        metavar="TYPES",
        help="comma-separated types of the devices the broken driver served (default: %(default)s)",
    )
    parser.add_argument(
        "--broken-error", default=DEFAULT_ERROR, help="the import error of the broken driver (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token is required (or set IOTBOX_SIM_TOKEN)")
    if args.boxes < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--boxes, --concurrency and --repeat must be at least 1")
    if args.restart_every < 0:
        parser.error("--restart-every cannot be negative")
    args.broken = None
    if args.broken_driver:
        args.broken = BrokenDriver(
            args.broken_driver,
            frozenset(names(args.broken_boxes)),
            frozenset(names(args.broken_devices)),
            args.broken_error,
        )
    elif names(args.broken_boxes):
        parser.error("--broken-boxes needs --broken-driver")
    return args


def names(text):
    """The items of a comma-separated list."""
    return {name.strip() for name in text.split(",") if name.strip()}


def main(argv=None, out=print):
    args = parse_args(argv)
    args.off = names(args.off)
    try:
        report = run(
            args.url,
            args.token,
            boxes=args.boxes,
            seed=args.seed,
            style=args.style,
            concurrency=args.concurrency,
            state_file=args.state_file,
            repeat=args.repeat,
            handlers=args.handlers,
            series=args.series,
            off=args.off,
            broken=args.broken,
        )
    except ValueError as error:
        out(f"iotbox-sim: error: {error}")
        return 2
    print_report(report, load=args.load or args.repeat > 1, out=out)
    if args.stay_on:
        stay_on(args, report, out=out)
    return 0 if report.ok else 1


class Stop(Exception):
    """SIGTERM or SIGINT: the boxes are switched off."""


def _raise_stop(signum, frame):
    raise Stop


class Restarts(threading.Thread):
    """The boxes that are on start again every ``every`` seconds, one after
    the other (a box restarted by its owner, or at night): check-in, then
    handlers download, as at start (:func:`start_box`). The bus connection of
    a box stays open meanwhile (the genuine box's closes for a few seconds,
    well within the disconnection grace)."""

    def __init__(self, args, results, etags, out, lock):
        super().__init__(name="restarts", daemon=True)
        self.args = args
        self.boxes = [result.box for result in results]
        self.etags = etags
        self.out = out
        self.lock = lock
        self.results = []
        self.stopping = threading.Event()

    def run(self):
        session = requests.Session()
        pause = self.args.restart_every / max(1, len(self.boxes))
        while True:
            for box in self.boxes:
                if self.stopping.wait(pause):
                    return
                result, etag = start_box(
                    session,
                    self.args.url.rstrip("/"),
                    box,
                    self.args.token,
                    self.etags.get(box.identifier),
                    handlers=self.args.handlers,
                    broken=getattr(self.args, "broken", None),
                )
                if etag:
                    self.etags[box.identifier] = etag
                self.results.append(result)
                with self.lock:
                    self.out(f"restart: {result_line(result)}")

    def stop(self, timeout=5):
        self.stopping.set()
        self.join(timeout)


def stay_on(args, report, out=print, until=None):
    """Keep the boxes' websockets open until ``until`` is set (or a signal);
    with ``args.restart_every``, the boxes start again that often meanwhile."""
    lock = threading.Lock()

    def events(link, what):
        if what != "subscribed" or link.subscriptions > 1:
            with lock:
                out(f"{link.box.name:<28} bus: {what}")

    pairs = [(r.box, r.setup.channel) for r in report.results]
    links = keep_connected(args.url, pairs, db=args.db, reconnect=args.reconnect, events=events)
    silent = [r.box.name for r in report.results if not r.setup.channel]
    missing = wait_connected(links)
    out(
        f"{len(links) - len(missing)} boxes connected to the bus and subscribed; "
        f"{len(args.off)} switched off ({', '.join(sorted(args.off)) or 'none'}); "
        f"{len(silent)} without a channel; {len(missing)} could not connect yet (they retry)"
    )
    restarts = None
    if getattr(args, "restart_every", 0) and report.results:
        restarts = Restarts(args, report.results, dict(report.etags or {}), out, lock)
        restarts.start()
    if until is None:
        until = threading.Event()
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    else:
        previous = {}
    try:
        while not until.wait(1):
            pass
    except Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if restarts is not None:
            restarts.stop()
            if args.state_file:
                save_state(args.state_file, {**load_state(args.state_file), "etags": restarts.etags})
        stop_all(links)
    return links


if __name__ == "__main__":
    sys.exit(main())
