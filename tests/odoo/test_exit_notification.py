# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""An Odoo process that exits within the second it collects the boxes that
started reporting errors (a prefork worker recycled, a server stopped) still
tells the open dashboards: the real ``odoo-bin``, its registry and its bus.

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


@tagged("post_install", "-at_install")
class TestNotificationAtExit(BaseCase):
    def query(self, sql, params=()):
        return run_sql(config["db_name"], sql, params)

    def test_boxes_collected_when_the_process_exits_are_sent(self):
        # Ids no box has: this test's notification among any other.
        ids = sorted(secrets.randbelow(10**9) + 10**9 for __ in range(3))
        before = self.query("SELECT coalesce(max(id), 0) FROM bus_bus")[0][0]
        self.addCleanup(self.query, "DELETE FROM bus_bus WHERE id > %s AND message LIKE %s", (before, f"%{ids[0]}%"))
        odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
        command = [sys.executable, str(odoo_bin), "shell", "-c", config.rcfile, "-d", config["db_name"]]
        result = subprocess.run(
            [*command, "--log-level=warn", "--no-http"],
            input=SCRIPT.format(ids=ids),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        errors = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if " ERROR " in line]
        self.assertEqual((result.returncode, errors), (0, []), result.stderr[-3000:])
        rows = self.query(
            "SELECT message FROM bus_bus WHERE id > %s AND message::jsonb->>'type' = %s", (before, BOXES_CHANGED)
        )
        payloads = [json.loads(message)["payload"] for (message,) in rows]
        self.assertIn({"count": 3, "ids": ids}, payloads)
