# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Two Odoo servers on one database, as a deployment scales out: each a prefork
``odoo-bin --workers 2 --proxy-mode`` with its gevent worker, on free ports, on a
database of their own (``<test database>_two``, installed by the class), and
nginx in front of them where it is installed (``deploy/nginx_proxy.py``).

Boxes alternate between the servers (their own ports, so that the test knows which
one answered): the same bytes, ETag and 304 from both; a websocket on one and
check-ins on the other; a setting or a release saved on one, answered by the other
from the next request; a module installed and then upgraded by ``odoo-bin`` beside
them (a rolling deploy: one server holds the new handler files before the upgrade
runs, the other after it) records one bundle per platform each time, and every box
gets the same bytes for the same ETag from both servers all along. The files that
win are those of the server running the module versions the database records
(docs/multi-server.md).

The downloads are the genuine 18.0 box's ``download_iot_handlers``
(``hw_drivers/tools/helpers.py`` loaded from the Odoo tree) and the check-ins its
``Manager.send_alldevices`` (``hw_drivers/main.py``), pointed at one server then the
other; the websocket is the genuine 18.0 ``WebsocketClient`` (``hw_drivers/websocket_client.py``).

The tests run in order (the class's state moves on: install, release, upgrade).
Each server's log is checked after each test for ERROR lines and tracebacks.

Not in the addon's tests (Odoo's runner): it creates a database and starts two
servers and nginx, rights the addon's tests must not need.
"""

import contextlib
import hashlib
import importlib.util
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import requests
import urllib3
import websocket
from test_prefork import PAIRING, connect, free_port, log_problems, run_sql

import odoo
from odoo.tests import BaseCase, tagged
from odoo.tools import config

from odoo.addons.iot_update.models.iot_handlers_bundle import NOTICED_LOG, OUTVOTED_LOG
from odoo.addons.iot_update.tests.test_bus_liveness import GenuineBox
from odoo.addons.iot_update.tests.test_handlers_genuine_box import (
    GENUINE_MODULE,
    HANDLERS_FOLDER,
    load_genuine_helpers,
)
from odoo.addons.iot_update.tests.test_setup_http import genuine_send_alldevices

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("iot_update_nginx_proxy", ROOT / "deploy" / "nginx_proxy.py")
nginx_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nginx_proxy)

#: Start of the skip reason when nginx is missing (./dev test reports it as NOT RUN).
NGINX_NOT_RUN = "NGINX TESTS NOT RUN: nginx is not installed (./dev setup installs it as root with apt-get)"
ADDON = "iot_update"
FIXTURE = "iot_update_test_rolling"
WORKERS = 2
LINUX_VERSION = "L24.11-18.0#1a2b3c4"
MAC = "aa:bb:cc:19:00:01"
OTHER_MAC = "aa:bb:cc:19:00:02"
OUTVOTED_START = OUTVOTED_LOG.split("(%s)")[0]
#: A recorded bundle change in a log line (NOTICED_LOG: "... noticed (<state>): handlers flag ...").
NOTICED = re.compile(re.escape(NOTICED_LOG.split(" %s")[0]) + r" \w+ \w+ noticed \(")


def noticed(text):
    """The lines of ``text`` (a log) recording a bundle change."""
    return [line for line in text.splitlines() if NOTICED.search(line)]


def make_fixture(base, version, drivers):
    """The module ``FIXTURE`` in ``version`` with the handler files ``drivers`` under ``base``."""
    module = base / FIXTURE
    (module / "iot_handlers" / "drivers").mkdir(parents=True)
    (module / "__init__.py").write_text("")
    (module / "__manifest__.py").write_text(
        repr({"name": "Rolling handlers", "version": version, "license": "LGPL-3", "depends": [ADDON]})
    )
    for name in drivers:
        (module / "iot_handlers" / "drivers" / name).write_text(f"# {name} of {FIXTURE} {version}\n")


class Server:
    """A prefork Odoo server with its gevent worker, on free ports."""

    def __init__(self, name, db, folder, extra_addons):
        self.name, self.db = name, db
        self.http_port, self.gevent_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log_path = folder / f"{name}.log"
        self.stderr_path = folder / f"{name}.stderr"
        self.log_offset = 0
        odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
        command = [
            *(sys.executable, odoo_bin, "-c", config.rcfile, "-d", db, f"--db-filter=^{db}$"),
            f"--addons-path={config['addons_path']},{extra_addons}",
            *(f"--workers={WORKERS}", "--max-cron-threads=0", "--proxy-mode", "--http-interface=127.0.0.1"),
            *(f"--http-port={self.http_port}", f"--gevent-port={self.gevent_port}"),
            *(f"--logfile={self.log_path}", "--log-level=info"),
        ]
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen([str(part) for part in command], stdout=subprocess.DEVNULL, stderr=stderr)

    def wait(self):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.name} stopped: {self.log_path.read_text()[-3000:]}")
            try:
                answers = [
                    requests.post(self.url + "/web/webclient/version_info", json={}, timeout=60)
                    for __ in range(WORKERS * 2)
                ]
                if all(answer.status_code == 200 for answer in answers):
                    # The gevent worker (the websocket) too.
                    socket.create_connection(("127.0.0.1", self.gevent_port), timeout=1).close()
                    return
            except (requests.ConnectionError, OSError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server {self.name} did not answer: {self.log_path.read_text()[-3000:]}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def problems(self):
        text = self.log()
        new, self.log_offset = text[self.log_offset :], len(text)
        gevent_pids = set(re.findall(r"^\S+ \S+ (\d+) \w+ \S+ odoo\.service\.server: Evented Service", text, re.M))
        problems = log_problems(new.splitlines(), gevent_pids)
        stderr = self.stderr_path.read_text(errors="replace")
        problems += [block for block in stderr.split("Traceback (most recent call last):")[1:] if ADDON in block]
        return problems

    def rpc(self, model, method, *args, **kwargs):
        """``model.method(*args, **kwargs)`` as the administrator, through JSON-RPC."""
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {
                "service": "object",
                "method": "execute_kw",
                "args": [self.db, 2, "admin", model, method, list(args), kwargs],
            },
        }
        answer = requests.post(self.url + "/jsonrpc", json=body, timeout=120).json()
        if "error" in answer:
            raise AssertionError(answer["error"]["data"]["message"])
        return answer["result"]


@tagged("post_install", "-at_install")
class TestTwoServers(BaseCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = f"{config['db_name']}_two"
        cls.folder = Path(tempfile.mkdtemp(prefix="iot_update_two_"))
        cls.addClassCleanup(shutil.rmtree, cls.folder, ignore_errors=True)
        # The module as the old release ships it (server A) and as the new one does (server B).
        cls.old_addons, cls.new_addons = cls.folder / "old", cls.folder / "new"
        make_fixture(cls.old_addons, "18.0.1.0.0", ["RollingDriver.py"])
        make_fixture(cls.new_addons, "18.0.1.1.0", ["RollingDriver.py", "RollingExtraDriver.py"])
        cls.drop()
        cls.addClassCleanup(cls.drop)
        cls.odoo_bin("-i", ADDON, "--without-demo=all", addons=cls.old_addons)
        cls.sql(
            """INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date)
                    VALUES ('iot_token', %(token)s, 1, now(), 1, now())
               ON CONFLICT (key) DO UPDATE SET value = %(token)s""",
            {"token": PAIRING},
        )
        cls.a = Server("a", cls.db, cls.folder, cls.old_addons)
        cls.addClassCleanup(cls.a.stop)
        cls.b = Server("b", cls.db, cls.folder, cls.new_addons)
        cls.addClassCleanup(cls.b.stop)
        cls.a.wait()
        cls.b.wait()
        cls.nginx = None
        if nginx_proxy.nginx_binary():
            cls.nginx = nginx_proxy.Nginx(
                free_port(), [(cls.a.http_port, cls.a.gevent_port), (cls.b.http_port, cls.b.gevent_port)]
            ).start()
            cls.addClassCleanup(cls.nginx.stop)
        cls.helpers = load_genuine_helpers()
        cls.box_home = cls.folder / "box"
        cls.server_url = cls.a.url
        replacements = {
            "get_odoo_server_url": lambda: cls.server_url,
            "get_mac_address": lambda: MAC,
            "path_file": lambda filename: cls.box_home / filename,
            "file_path": lambda path: str(cls.box_home / "odoo" / "addons" / path),
            # Without remounting / read-write with sudo as the box does.
            "writable": contextlib.nullcontext,
        }
        for name, replacement in replacements.items():
            cls.addClassCleanup(setattr, cls.helpers, name, getattr(cls.helpers, name))
            setattr(cls.helpers, name, replacement)

    @classmethod
    def drop(cls):
        connection = connect("postgres")
        connection.autocommit = True
        with connection.cursor() as cr:
            cr.execute(f'DROP DATABASE IF EXISTS "{cls.db}" WITH (FORCE)')
        connection.close()

    @classmethod
    def odoo_bin(cls, *args, addons):
        """``odoo-bin ... --stop-after-init`` beside the servers; returns its log lines."""
        odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
        command = [sys.executable, str(odoo_bin), "-c", config.rcfile, "-d", cls.db, "--log-level=info"]
        command += [f"--addons-path={config['addons_path']},{addons}", "--stop-after-init", "--logfile="]
        result = subprocess.run(command + list(args), capture_output=True, text=True, timeout=900, check=False)
        lines = result.stdout.splitlines() + result.stderr.splitlines()
        errors = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
        if result.returncode or errors:
            raise AssertionError(f"odoo-bin {args} failed: {errors} {result.stderr[-3000:]}")
        return lines

    @classmethod
    def sql(cls, query, params=None):
        return run_sql(cls.db, query, params)

    def setUp(self):
        super().setUp()
        self.addCleanup(self.check_logs)

    def check_logs(self):
        for server in (self.a, self.b):
            self.assertEqual(server.problems()[:20], [], f"server {server.name} logged errors")

    # ------------------------------------------------------------------

    def check_in(self, server, identifier=MAC, version=LINUX_VERSION):
        """The genuine 18.0 box's check-in (``Manager.send_alldevices``) against ``server``;
        returns the channel it keeps."""
        box_helpers = SimpleNamespace(
            get_conf=lambda key: None,
            get_ip=lambda: "10.0.0.1",
            get_hostname=lambda: f"box-{identifier}",
            get_mac_address=lambda: identifier,
            get_token=lambda: PAIRING,
            get_version=lambda detailed_version=False: version if detailed_version else version[:6],
        )
        namespace = {
            "helpers": box_helpers,
            "iot_devices": {},
            "json": json,
            "urllib3": urllib3,
            "_logger": logging.getLogger("genuine_box"),
        }
        exec(genuine_send_alldevices(), namespace)
        iot_client = SimpleNamespace(iot_channel=None)
        with self.assertNoLogs("genuine_box", "ERROR"):
            namespace["send_alldevices"](SimpleNamespace(server_url=server.url), iot_client)
        self.assertTrue(iot_client.iot_channel, f"server {server.name} gave no channel")
        return iot_client.iot_channel

    def genuine_download(self, server):
        """The genuine box's ``download_iot_handlers`` against ``server``: ``{path: bytes}`` it then holds."""
        type(self).server_url = server.url
        folder = self.box_home / HANDLERS_FOLDER
        shutil.rmtree(self.box_home, ignore_errors=True)
        for kind in ("drivers", "interfaces"):
            (folder / kind).mkdir(parents=True)
        with self.assertNoLogs(GENUINE_MODULE, "ERROR"):
            self.helpers.download_iot_handlers(auto=True)
        return {
            str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
        }

    def download(self, server, mac=MAC, etag=None):
        headers = {"If-None-Match": etag} if etag else {}
        return requests.post(
            server.url + "/iot/get_handlers",
            files={"mac": (None, mac), "auto": (None, "True")},
            headers=headers,
            timeout=120,
        )

    def current_digest(self, variant="linux"):
        ((digest,),) = self.sql(
            "SELECT value FROM ir_config_parameter WHERE key = %s", [f"iot_update.handlers_digest.{variant}"]
        )
        return digest

    def bundles(self, variant="linux"):
        return self.sql("SELECT digest, state FROM iot_handlers_bundle WHERE variant = %s ORDER BY id", [variant])

    def assert_one_answer(self, count=10, mac=MAC):
        """``count`` downloads alternating between the servers: one ETag, the bytes it names,
        the current digest of the database; 304 from both for that ETag. Returns the ETag."""
        answers = [self.download(server, mac) for __ in range(count // 2) for server in (self.a, self.b)]
        self.assertEqual({answer.status_code for answer in answers}, {200})
        self.assertEqual({answer.headers["ETag"] for answer in answers}, {f'"{self.current_digest()}"'})
        self.assertEqual({hashlib.sha256(answer.content).hexdigest() for answer in answers}, {self.current_digest()})
        etag = answers[0].headers["ETag"]
        for server in (self.a, self.b):
            self.assertEqual(self.download(server, mac, etag).status_code, 304)
        return etag

    # ------------------------------------------------------------------

    def test_1_same_bytes_and_etag_from_either_server(self):
        self.check_in(self.a)
        self.check_in(self.b)
        on_a, on_b = self.genuine_download(self.a), self.genuine_download(self.b)
        self.assertTrue(on_a)
        self.assertEqual(on_a, on_b)
        self.assert_one_answer()
        ((handlers_digest, outdated, status),) = self.sql(
            "SELECT handlers_digest, handlers_outdated, update_status FROM iot_box WHERE identifier = %s", [MAC]
        )
        self.assertEqual((handlers_digest, outdated, status), (self.current_digest(), False, "up_to_date"))

    def test_2_websocket_on_one_server_check_ins_on_the_other(self):
        channel = self.check_in(self.b, OTHER_MAC)
        self.assertTrue(channel)
        self.sql("UPDATE iot_box SET last_seen_bus = NULL WHERE identifier = %s", [OTHER_MAC])
        # The genuine 18.0 box's websocket client (hw_drivers/websocket_client.py),
        # given server A's gevent port as its server.
        box = GenuineBox(f"http://127.0.0.1:{self.a.gevent_port}", OTHER_MAC, channel)
        box.start()
        try:
            deadline = time.monotonic() + 30
            while not self.sql(
                "SELECT 1 FROM iot_box WHERE identifier = %s AND last_seen_bus IS NOT NULL", [OTHER_MAC]
            ):
                self.assertLess(time.monotonic(), deadline, "the subscription on server A was not recorded")
                time.sleep(0.2)
            self.check_in(self.b, OTHER_MAC)
            connected = self.sql("SELECT bus_connection IS NOT NULL FROM iot_box WHERE identifier = %s", [OTHER_MAC])
            self.assertEqual(connected, [(True,)], "connected now, through server A")
        finally:
            self.assertTrue(box.stop(), "the box's websocket thread ended")
        fields = ["last_seen_bus", "last_seen", "update_status", "is_offline"]
        reads = [
            server.rpc("iot.box", "search_read", [("identifier", "=", OTHER_MAC)], fields=fields)
            for server in (self.a, self.b)
        ]
        self.assertEqual(reads[0], reads[1])
        self.assertFalse(reads[0][0]["is_offline"])
        self.assertGreaterEqual(reads[0][0]["last_seen"], reads[0][0]["last_seen_bus"])

    def test_3_setting_saved_on_one_server_answered_by_the_other(self):
        names = ["iot_offline_delay_hours", "iot_hold_bundles", "iot_box_log_level", "iot_disconnect_grace_minutes"]
        first = {
            "iot_offline_delay_hours": 7,
            "iot_hold_bundles": True,
            "iot_box_log_level": "error",
            "iot_disconnect_grace_minutes": 9,
        }
        for value in (first, {"iot_offline_delay_hours": 5}):
            # Each server's workers read the value once first (their caches hold it).
            for server in (self.a, self.b):
                server.rpc("res.config.settings", "default_get", names)
            settings = self.a.rpc("res.config.settings", "create", value)
            self.a.rpc("res.config.settings", "execute", [settings])
            # The settings not given keep the values saved before.
            expected = {**first, "iot_offline_delay_hours": value["iot_offline_delay_hours"]}
            for __ in range(WORKERS * 2):  # every worker of the other server
                answer = self.b.rpc("res.config.settings", "default_get", names)
                self.assertEqual({name: answer[name] for name in names}, expected)

    def test_4_module_install_beside_the_servers_recorded_once(self):
        before = self.bundles()
        old_etag = self.assert_one_answer()
        lines = self.odoo_bin("-i", FIXTURE, addons=self.old_addons)
        noticed_lines = noticed("\n".join(lines))
        self.assertEqual(len(noticed_lines), 3, "one bundle per platform")
        self.assertIn("(held)", noticed_lines[0])  # new bundles are held (test 3)
        after = self.bundles()
        self.assertEqual(after[: len(before)], before)
        self.assertEqual([state for __, state in after[len(before) :]], ["held"])
        # Both servers load the new registry; non-canary boxes keep the current bundle.
        self.assertEqual(self.assert_one_answer(), old_etag)
        for server in (self.a, self.b):
            self.assertEqual(noticed(server.log()), [], f"server {server.name} recorded a bundle")
        # Server B holds the module's next version: its files do not win; it says so once.
        self.assertEqual(self.b.log().count(OUTVOTED_START), 1)
        self.assertEqual(self.a.log().count(OUTVOTED_START), 0)

    def test_5_release_on_one_server_next_download_on_the_other(self):
        held = self.a.rpc("iot.handlers.bundle", "search", [("state", "=", "held")])
        self.assertEqual(len(held), 3)
        for bundle in held:
            self.a.rpc("iot.handlers.bundle", "action_release", [bundle])
        ((released,),) = self.sql(
            "SELECT digest FROM iot_handlers_bundle WHERE id IN %s AND variant = 'linux'", [tuple(held)]
        )
        self.assertEqual(self.current_digest(), released)
        answer = self.download(self.b)
        self.assertEqual((answer.status_code, answer.headers["ETag"]), (200, f'"{released}"'))
        files = self.genuine_download(self.b)
        self.assertIn("drivers/RollingDriver.py", files)
        self.assertNotIn("drivers/RollingExtraDriver.py", files)
        self.assertEqual(self.genuine_download(self.a), files)
        self.assertEqual(self.assert_one_answer(), f'"{released}"')

    def test_6_rolling_deploy_changes_the_bundle_once(self):
        settings = self.b.rpc("res.config.settings", "create", {"iot_hold_bundles": False})
        self.b.rpc("res.config.settings", "execute", [settings])
        before = self.bundles()
        etags = set()
        # Server B runs the new files, server A the old ones: one ETag before the upgrade ...
        etags.add(self.assert_one_answer(50))
        lines = self.odoo_bin("-u", FIXTURE, addons=self.new_addons)
        self.assertEqual(len(noticed("\n".join(lines))), 3)
        # ... and one after: the upgraded files (server B's), from both servers.
        etags.add(self.assert_one_answer(50))
        self.assertEqual(len(etags), 2, "the current bundle changed once")
        after = self.bundles()
        self.assertEqual(len(after), len(before) + 1)
        self.assertEqual(after[-1], (self.current_digest(), "current"))
        files = self.genuine_download(self.a)
        self.assertIn("drivers/RollingExtraDriver.py", files)
        self.assertEqual(self.genuine_download(self.b), files)
        # Server A now holds the older version: it serves the recorded bytes and said why, once.
        self.assertEqual(self.a.log().count(OUTVOTED_START), 1)
        self.assertEqual(self.b.log().count(OUTVOTED_START), 1)
        for server in (self.a, self.b):
            self.assertEqual(noticed(server.log()), [])

    def test_7_upgrade_of_the_addon_beside_the_servers_changes_nothing(self):
        before, etag = self.bundles(), self.assert_one_answer()
        flags = self.sql("SELECT identifier, handlers_outdated, update_status FROM iot_box ORDER BY identifier")
        lines = self.odoo_bin("-u", ADDON, addons=self.new_addons)
        self.assertEqual(noticed("\n".join(lines)), [])
        self.assertEqual(self.bundles(), before)
        self.assertEqual(self.assert_one_answer(), etag)
        self.assertEqual(
            self.sql("SELECT identifier, handlers_outdated, update_status FROM iot_box ORDER BY identifier"), flags
        )
        for server in (self.a, self.b):
            self.assertEqual(noticed(server.log()), [])
        self.assertEqual(self.a.log().count(OUTVOTED_START), 1)

    def test_8_through_nginx(self):
        if self.nginx is None:
            self.skipTest(NGINX_NOT_RUN)
        etag = f'"{self.current_digest()}"'
        answers = [
            requests.post(
                self.nginx.url + "/iot/get_handlers", files={"mac": (None, MAC), "auto": (None, "True")}, timeout=120
            )
            for __ in range(10)
        ]
        self.assertEqual({(answer.status_code, answer.headers["ETag"]) for answer in answers}, {(200, etag)})
        # Both servers answered (round robin): each recorded deliveries.
        for server in (self.a, self.b):
            self.assertIn("POST /iot/get_handlers", server.log())
        # The box's websocket through nginx's /websocket location (to a gevent port).
        channel = self.check_in(self.a, OTHER_MAC)
        self.sql("UPDATE iot_box SET last_seen_bus = NULL WHERE identifier = %s", [OTHER_MAC])
        ws = websocket.create_connection(
            self.nginx.url.replace("http", "ws") + "/websocket", header={"User-Agent": "OdooIoTBox/1.0"}, timeout=30
        )
        try:
            ws.send(
                json.dumps(
                    {"event_name": "subscribe", "data": {"channels": [channel], "last": 0, "mac_address": OTHER_MAC}}
                )
            )
            deadline = time.monotonic() + 30
            while not self.sql(
                "SELECT 1 FROM iot_box WHERE identifier = %s AND last_seen_bus IS NOT NULL", [OTHER_MAC]
            ):
                self.assertLess(time.monotonic(), deadline, "the subscription through nginx was not recorded")
                time.sleep(0.2)
        finally:
            ws.close()
