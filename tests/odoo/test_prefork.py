# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Crowds of boxes against a prefork Odoo server (several worker processes),
as a production server runs.

The server is ``odoo-bin --workers 4`` on free ports, on a database of its
own (``<test database>_prefork``: ``./dev test`` copies it from the test
database before the tests start; a targeted run installs it when missing).
Requests come from threads of this process, all released at once, as many
connected at a time as the server queues (8 per worker); what the server
committed is read from its database; its log is read after each test, which
fails on any ERROR line or traceback.

The gevent worker (the bus websocket) is started on a free port too, but no
test uses it. In some environments it cannot start (e.g. a dependency of
gevent missing from the Python environment) and the server restarts it in a
loop; that says nothing about the box routes, so its failures are left out,
precisely: the gevent worker is a process of its own, started anew, which
fails before its logging is set up, hence on the server's standard error and
not in its log file. The log file (the master and the HTTP workers, forked
with their logging set up) is checked whole, except lines of a gevent worker
that did start (found by its "Evented Service" line); the standard error is
checked for tracebacks naming the addon.

Not in the addon's tests (Odoo's runner): PostgreSQL copies a database only while
nobody is connected to it, and Odoo's runner stays connected to its database for the
whole run, so inside it this test would install a database of its own (a minute more)
and start five more Odoo processes next to the runner, with a role allowed to create
databases: rights and room that the addon's tests, shipped in the wheel and run on
hosted builds, must not need.
"""

import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import requests

import odoo
from odoo.tests import BaseCase, tagged
from odoo.tools import config

WORKERS = 4
#: Connections Odoo's prefork server queues (it listens with a backlog of 8 per
#: worker): past them the kernel drops or resets connections, which a box
#: would see as a network failure, not as the server's answer.
AT_ONCE = 8 * WORKERS
ADDON = "iot_update"
PAIRING = "prefork-pairing-token-0123456789abcdef"
#: Lines of Odoo's log: "<date> <time> <pid> <LEVEL> <db> <logger>: <message>".
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<pid>\d+) (?P<level>[A-Z]+) ")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(dbname):
    password = config.get("db_password")
    return psycopg2.connect(
        host=config.get("db_host") or None,
        port=config.get("db_port") or None,
        user=config.get("db_user") or None,
        password=password or None,
        dbname=dbname,
    )


def run_sql(dbname, query, params=None):
    """Run ``query`` in a transaction of its own on ``dbname``; its rows, if it returns any."""
    connection = connect(dbname)
    try:
        with connection, connection.cursor() as cr:
            cr.execute(query, params)
            return cr.fetchall() if cr.description else None
    finally:
        connection.close()


def database_exists(dbname):
    connection = connect("postgres")
    try:
        with connection.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname])
            return bool(cr.fetchone())
    finally:
        connection.close()


def setup_body(identifier, version="L24.11-18.0#1a2b3c4", name=None, devices=None, token=PAIRING, mac=None):
    iot_box = {"name": name or f"box-{identifier}", "identifier": identifier, "ip": "10.0.0.1", "token": token}
    iot_box["version"] = version
    if mac:
        iot_box["mac"] = mac
    device_values = {"name": "dev", "type": "printer", "manufacturer": "Epson", "connection": "usb", "subtype": ""}
    body = {"params": {"iot_box": iot_box, "devices": {key: device_values for key in devices or ()}}}
    return json.dumps(body).encode()


def log_problems(lines, gevent_pids):
    """The ERROR/CRITICAL lines and tracebacks in ``lines`` (a server log),
    leaving out those of the gevent worker processes that do not name the addon."""
    problems, pid, in_traceback = [], None, False
    for line in lines:
        match = LOG_LINE.match(line)
        if match:
            pid, in_traceback = match["pid"], False
            bad = match["level"] in ("ERROR", "CRITICAL")
        else:
            bad = line.startswith("Traceback") or in_traceback
            in_traceback = in_traceback or line.startswith("Traceback")
        if bad and (pid not in gevent_pids or ADDON in line):
            problems.append(line)
    return problems


@tagged("post_install", "-at_install")
class TestPreforkServer(BaseCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = f"{config['db_name']}_prefork"
        cls.odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
        if not database_exists(cls.db):
            subprocess.run(
                [
                    *(sys.executable, cls.odoo_bin, "-c", config.rcfile, "-d", cls.db, "-i", ADDON),
                    *("--without-demo=all", "--stop-after-init", "--log-level=warn"),
                ],
                check=True,
                capture_output=True,
            )
        cls.sql(
            """INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date)
                    VALUES ('iot_token', %(token)s, 1, now(), 1, now())
               ON CONFLICT (key) DO UPDATE SET value = %(token)s""",
            {"token": PAIRING},
        )
        cls.sql("DELETE FROM iot_box")
        cls.sql("DELETE FROM iot_box_event")
        folder = Path(tempfile.mkdtemp(prefix="iot_update_prefork_"))
        cls.addClassCleanup(shutil.rmtree, folder, ignore_errors=True)
        cls.log_path = folder / "odoo.log"
        cls.start_server()
        cls.log_offset = 0

    @classmethod
    def sql(cls, query, params=None):
        return run_sql(cls.db, query, params)

    @classmethod
    def start_server(cls):
        port = free_port()
        cls.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            cls.odoo_bin,
            "-c",
            config.rcfile,
            "-d",
            cls.db,
            f"--db-filter=^{cls.db}$",
            f"--workers={WORKERS}",
            "--max-cron-threads=0",
            f"--http-port={port}",
            f"--gevent-port={free_port()}",
            "--http-interface=127.0.0.1",
            f"--logfile={cls.log_path}",
            "--log-level=info",
        ]
        cls.stderr_path = cls.log_path.with_name("stderr.txt")
        with cls.stderr_path.open("wb") as stderr:
            cls.server = subprocess.Popen([str(part) for part in command], stdout=subprocess.DEVNULL, stderr=stderr)
        cls.addClassCleanup(cls.stop_server)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if cls.server.poll() is not None:
                raise RuntimeError(f"the prefork server stopped: {cls.log_path.read_text()[-3000:]}")
            try:
                # Each worker loads the registry on its first request: a few at once warm them.
                with ThreadPoolExecutor(WORKERS * 2) as pool:
                    answers = list(
                        pool.map(lambda __: cls.post("/web/webclient/version_info", b"{}"), range(WORKERS * 2))
                    )
                if all(answer.status_code == 200 for answer in answers):
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the prefork server did not answer: {cls.log_path.read_text()[-3000:]}")

    @classmethod
    def stop_server(cls):
        cls.server.terminate()
        try:
            cls.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cls.server.kill()
            cls.server.wait()

    @classmethod
    def post(cls, path, body, content_type="application/json", **kwargs):
        return requests.post(cls.url + path, data=body, headers={"Content-Type": content_type}, timeout=120, **kwargs)

    def setUp(self):
        super().setUp()
        self.addCleanup(self.check_log)

    def check_log(self):
        text = self.log_path.read_text(errors="replace")
        if os.environ.get("IOT_UPDATE_PREFORK_LOG"):  # to read it after the run
            shutil.copy(self.log_path, os.environ["IOT_UPDATE_PREFORK_LOG"])
        new, self.__class__.log_offset = text[self.log_offset :], len(text)
        gevent_pids = set(re.findall(r"^\S+ \S+ (\d+) \w+ \S+ odoo\.service\.server: Evented Service", text, re.M))
        problems = log_problems(new.splitlines(), gevent_pids)
        self.assertEqual(problems[:20], [], "the server logged errors")
        stderr = self.stderr_path.read_text(errors="replace")
        tracebacks = [block for block in stderr.split("Traceback (most recent call last):")[1:] if ADDON in block]
        self.assertEqual(tracebacks[:5], [], "a traceback of the addon on the server's standard error")

    def at_once(self, calls):
        """Run ``calls`` (callables) from as many threads, released together,
        ``AT_ONCE`` of them connected at any moment."""
        barrier = threading.Barrier(len(calls))
        connections = threading.BoundedSemaphore(AT_ONCE)

        def run(call):
            barrier.wait(timeout=60)
            with connections:
                return call()

        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(run, calls))

    def check_in(self, body):
        return lambda: self.post("/iot/setup", body)

    def assert_answered(self, answers):
        for answer in answers:
            self.assertEqual(answer.status_code, 200, answer.text[:500])
            self.assertEqual(answer.json().keys(), {"jsonrpc", "id", "result"})
            self.assertIsInstance(answer.json()["result"], str)

    # ------------------------------------------------------------------

    def test_fifty_new_boxes_at_once(self):
        identifiers = [f"SN-CROWD-{i:04d}" for i in range(50)]
        answers = self.at_once([self.check_in(setup_body(ident, devices=[f"d-{ident}"])) for ident in identifiers])
        self.assert_answered(answers)
        rows = self.sql(
            """SELECT b.identifier, array_agg(d.identifier), count(DISTINCT e.id)
                 FROM iot_box b JOIN iot_device d ON d.box_id = b.id
                 JOIN iot_box_event e ON e.box_id = b.id AND e.kind = 'admission'
                WHERE b.identifier LIKE 'SN-CROWD-%%' GROUP BY b.identifier ORDER BY b.identifier"""
        )
        self.assertEqual(rows, [(ident, [f"d-{ident}"], 1) for ident in identifiers])

    def test_same_new_identifier_from_twenty_clients(self):
        versions = [f"L24.11-18.0#{i:07d}" for i in range(20)]
        answers = self.at_once(
            [self.check_in(setup_body("SN-SAME-0001", version, mac="aa:bb:cc:00:00:01")) for version in versions]
        )
        self.assert_answered(answers)
        boxes = self.sql(
            "SELECT id, version FROM iot_box WHERE identifier = 'SN-SAME-0001' OR mac = 'aa:bb:cc:00:00:01'"
        )
        self.assertEqual(len(boxes), 1)
        self.assertIn(boxes[0][1], versions)
        events = self.sql("SELECT kind, count(*) FROM iot_box_event WHERE box_id = %s GROUP BY kind", [boxes[0][0]])
        self.assertEqual(dict(events), {"admission": 1, "checkin": 19})

    def test_one_box_from_thirty_clients(self):
        self.assert_answered([self.check_in(setup_body("SN-BUSY-0001", devices=["first"]))()])
        calls = [
            setup_body(
                "SN-BUSY-0001",
                version=f"L25.07-18.0#{i:07d}",
                name=f"busy-{i}",
                devices=[f"dev-{i}-{j}" for j in range(i % 4)] + ["shared"],
            )
            for i in range(30)
        ]
        self.assert_answered(self.at_once([self.check_in(body) for body in calls]))
        ((box_id, version, name),) = self.sql("SELECT id, version, name FROM iot_box WHERE identifier = 'SN-BUSY-0001'")
        i = int(version[-7:])
        self.assertEqual(name, f"busy-{i}", "name and version from the same check-in")
        connected = self.sql(
            "SELECT identifier FROM iot_device WHERE box_id = %s AND connected ORDER BY identifier", [box_id]
        )
        self.assertEqual([row[0] for row in connected], sorted([f"dev-{i}-{j}" for j in range(i % 4)] + ["shared"]))
        events = self.sql("SELECT count(*) FROM iot_box_event WHERE box_id = %s AND kind = 'checkin'", [box_id])
        self.assertEqual(events, [(30,)], "each check-in recorded once")

    def test_deliveries_during_check_ins(self):
        macs = [f"aa:bb:cc:00:01:{i:02x}" for i in range(5)]
        self.assert_answered(self.at_once([self.check_in(setup_body(mac)) for mac in macs]))

        def deliver(mac):
            return lambda: requests.post(
                self.url + "/iot/get_handlers", files={"mac": (None, mac), "auto": (None, "True")}, timeout=120
            )

        calls = []
        for round_ in range(6):
            for mac in macs:
                calls.append(deliver(mac))
                calls.append(self.check_in(setup_body(mac, version=f"L24.11-18.0#{round_:07d}")))
        answers = self.at_once(calls)
        deliveries = [answer for answer in answers if answer.url.endswith("/iot/get_handlers")]
        self.assert_answered([answer for answer in answers if answer not in deliveries])
        self.assertEqual(len(deliveries), 30)
        for answer in deliveries:
            self.assertEqual(answer.status_code, 200)
            self.assertEqual(answer.headers["ETag"], f'"{hashlib.sha256(answer.content).hexdigest()}"')
            with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
                self.assertIsNone(archive.testzip())
                self.assertTrue(archive.namelist())
        rows = self.sql(
            """SELECT b.identifier, count(e.id), min(b.handlers_digest)
                 FROM iot_box b JOIN iot_box_event e ON e.box_id = b.id AND e.kind = 'delivery'
                WHERE b.identifier = ANY(%s) GROUP BY b.identifier ORDER BY b.identifier""",
            [macs],
        )
        digest = hashlib.sha256(deliveries[0].content).hexdigest()
        self.assertEqual(rows, [(mac, 6, digest) for mac in sorted(macs)], "each delivery recorded once")

    def test_log_batches_of_a_crowd_are_all_written_when_the_server_stops(self):
        """Each worker collects the log batches it accepts and writes them a
        second later; stopped at once (SIGTERM, as a service manager stops
        it), the server writes what its workers collected as they exit."""
        macs = [f"aa:bb:cc:00:02:{i:02x}" for i in range(40)]
        self.assert_answered(self.at_once([self.check_in(setup_body(mac)) for mac in macs]))

        def batch(mac, number):
            lines = [f"mac {mac}"] + [f"{30 + n % 2},batch {number} line {n}" for n in range(50)]
            body = "".join(f"{line}<log/>\n" for line in lines).encode()
            return lambda: requests.post(self.url + "/iot/log", data=body, timeout=120)

        def lines_per_box():
            return self.sql(
                """SELECT b.identifier, sum(l.line_count), count(l.id)
                     FROM iot_box b JOIN iot_box_log l ON l.box_id = b.id
                    WHERE b.identifier = ANY(%s) GROUP BY b.identifier ORDER BY b.identifier""",
                [macs],
            )

        # A first batch per box: the workers write them within the second after,
        # while they go on serving (the server's own timers, not a stop).
        answers = self.at_once([batch(mac, 0) for mac in macs])
        self.assertEqual({(answer.status_code, answer.content) for answer in answers}, {(200, b"")})
        deadline = time.monotonic() + 30
        while lines_per_box() != [(mac, 50, 50) for mac in sorted(macs)] and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(lines_per_box(), [(mac, 50, 50) for mac in sorted(macs)])
        answers = self.at_once([batch(mac, number) for number in (1, 2) for mac in macs])
        self.assertEqual({(answer.status_code, answer.content) for answer in answers}, {(200, b"")})
        self.stop_server()
        # 3 batches of 50 lines per box, one entry per line (two level numbers in turn).
        self.assertEqual(lines_per_box(), [(mac, 150, 150) for mac in sorted(macs)])
        self.start_server()  # for the tests after this one
