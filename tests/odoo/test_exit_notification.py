# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""An Odoo process that exits within the second it collects the boxes that
started reporting errors (a prefork worker recycled, a server stopped) still
tells the open dashboards: the real ``odoo-bin``, its registry and its bus.
Likewise the lines of the boxes' log batches it accepted are written.

Not in the addon's tests (Odoo's runner): it runs a second ``odoo-bin`` with this
run's configuration file, which the addon's tests, shipped in the wheel and run on
hosted builds, must not need.
"""

import json
import secrets
import subprocess
import sys
from pathlib import Path

from test_prefork import run_sql

import odoo
from odoo.tests import BaseCase, tagged
from odoo.tools import config

from odoo.addons.iot_update.models.iot_box_liveness import BOXES_CHANGED

SCRIPT = """
from odoo.addons.iot_update.models.iot_box_errors import error_starts
# The timer an hour away: only the exit can send.
error_starts.delay = 3600
error_starts.add(env.cr.dbname, {ids!r})
"""

LINES_SCRIPT = """
from odoo.addons.iot_update.models.iot_box_log import box_lines
from odoo.addons.iot_update.tools.box_log import BoxLogBatch
# The timer an hour away: only the exit can write.
box_lines.delay = 3600
env["iot.box"].create({{"name": "exit", "identifier": {mac!r}, "checkin_remote_addr": "127.0.0.1"}})
env.cr.commit()
env["iot.box.log"]._receive(BoxLogBatch("mac", {mac!r}, [(30, "kept at exit"), (40, "and this")]), "127.0.0.1")
env.cr.commit()
"""
EXIT_MAC = "aa:bb:cc:dd:ee:e7"


@tagged("post_install", "-at_install")
class TestNotificationAtExit(BaseCase):
    def query(self, sql, params=()):
        return run_sql(config["db_name"], sql, params)

    def run_shell(self, script):
        """Run ``script`` in a real ``odoo-bin shell`` on this run's database, which then exits."""
        odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
        command = [sys.executable, str(odoo_bin), "shell", "-c", config.rcfile, "-d", config["db_name"]]
        result = subprocess.run(
            [*command, "--log-level=warn", "--no-http"],
            input=script,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        errors = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if " ERROR " in line]
        self.assertEqual((result.returncode, errors), (0, []), result.stderr[-3000:])

    def test_boxes_collected_when_the_process_exits_are_sent(self):
        # Ids no box has: this test's notification among any other.
        ids = sorted(secrets.randbelow(10**9) + 10**9 for __ in range(3))
        before = self.query("SELECT coalesce(max(id), 0) FROM bus_bus")[0][0]
        self.addCleanup(self.query, "DELETE FROM bus_bus WHERE id > %s AND message LIKE %s", (before, f"%{ids[0]}%"))
        self.run_shell(SCRIPT.format(ids=ids))
        rows = self.query(
            "SELECT message FROM bus_bus WHERE id > %s AND message::jsonb->>'type' = %s", (before, BOXES_CHANGED)
        )
        payloads = [json.loads(message)["payload"] for (message,) in rows]
        self.assertIn({"count": 3, "ids": ids}, payloads)

    def test_log_lines_collected_when_the_process_exits_are_written(self):
        self.addCleanup(self.query, "DELETE FROM iot_box WHERE identifier = %s", (EXIT_MAC,))
        self.run_shell(LINES_SCRIPT.format(mac=EXIT_MAC))
        rows = self.query(
            "SELECT l.level, l.message FROM iot_box_log l JOIN iot_box b ON b.id = l.box_id"
            " WHERE b.identifier = %s ORDER BY l.id",
            (EXIT_MAC,),
        )
        self.assertEqual(rows, [("warning", "kept at exit"), ("error", "and this")])
