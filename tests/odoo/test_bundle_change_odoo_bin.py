# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A real module install through ``odoo-bin``, on a database of its own: the
registry's load after it records the new bundles, names the module's file as
what changed, and flags the boxes holding the old bundle.

Not in the addon's tests (Odoo's runner): it creates and drops a database and runs a
second ``odoo-bin`` with this run's configuration file, rights that the addon's tests,
shipped in the wheel and run on hosted builds, must not need.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
from test_prefork import run_sql

import odoo
from odoo.sql_db import connection_info_for
from odoo.tests import BaseCase, tagged
from odoo.tools import config

FIXTURE = "iot_update_test_new_handlers"
DIGEST_KEYS = tuple(f"iot_update.handlers_digest.{variant}" for variant in ("all", "linux", "windows"))
#: (identifier, version, platform, variant) of the boxes holding the current bundle.
BOXES = (
    ("aa:bb:cc:10:00:01", "L24.11-18.0#1a2b3c4", "linux", "linux"),
    ("aa:bb:cc:10:00:02", "W23.11-18.0-20241105", "windows", "windows"),
    ("aa:bb:cc:10:00:03", "", "unknown", "all"),
)


def make_addon(base):
    module = base / FIXTURE
    (module / "iot_handlers" / "drivers").mkdir(parents=True)
    (module / "__init__.py").write_text("")
    (module / "__manifest__.py").write_text(
        repr({"name": "New handlers", "version": "18.0.1.0.0", "license": "LGPL-3", "depends": ["iot_update"]})
    )
    (module / "iot_handlers" / "drivers" / "NewDriver.py").write_text("# a driver of a newly installed module\n")


@tagged("post_install", "-at_install")
class TestInstallThroughOdooBin(BaseCase):
    def setUp(self):
        super().setUp()
        self.db = f"{config['db_name'] or 'iot_update_test'}_odoo_bin"
        self.base = Path(tempfile.mkdtemp(prefix="iot_update_test_addon_"))
        self.addCleanup(shutil.rmtree, self.base, ignore_errors=True)
        make_addon(self.base)
        self.drop()
        self.addCleanup(self.drop)

    def connect(self, db):
        __, info = connection_info_for(db)
        return psycopg2.connect(**info)

    def drop(self):
        connection = self.connect("postgres")
        connection.autocommit = True
        with connection.cursor() as cr:
            cr.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        connection.close()

    def odoo_bin(self, *args):
        odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
        command = [sys.executable, str(odoo_bin), "-c", config.rcfile, "-d", self.db]
        command += [f"--addons-path={config['addons_path']},{self.base}", "--stop-after-init", "--log-level=warn"]
        result = subprocess.run(command + list(args), capture_output=True, text=True, timeout=900, check=False)
        noise = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if " ERROR " in line]
        self.assertEqual((result.returncode, noise), (0, []), result.stderr[-3000:])

    def query(self, sql, params=()):
        return run_sql(self.db, sql, params)

    def digests(self):
        return dict(self.query("SELECT key, value FROM ir_config_parameter WHERE key IN %s", [DIGEST_KEYS]))

    def test_module_install_flags_the_fleet_at_registry_load(self):
        self.odoo_bin("-i", "iot_update", "--without-demo=all")
        before = self.digests()
        self.assertEqual(len(before), 3)
        # Boxes of every platform holding the current bundle, up to date.
        for identifier, version, platform, variant in BOXES:
            self.query(
                """INSERT INTO iot_box (name, identifier, version, platform, active, drivers_auto_update,
                                        handlers_digest, handlers_outdated, update_status, is_offline,
                                        needs_image_upgrade, code_update_pending, last_contact)
                   VALUES (%s, %s, %s, %s, true, true, %s, false, 'up_to_date', false, false, false, now())""",
                [identifier, identifier, version, platform, before[f"iot_update.handlers_digest.{variant}"]],
            )

        self.odoo_bin("-i", FIXTURE)

        after = self.digests()
        for key in DIGEST_KEYS:
            self.assertNotEqual(after[key], before[key], key)
        # The new bundle of each platform names exactly the module's file as what changed.
        changes = self.query(
            """SELECT bundle.variant, previous.state, change.path, change.change, change.module
                 FROM iot_handlers_bundle bundle
                 JOIN iot_handlers_bundle previous ON previous.id = bundle.previous_id
                 JOIN iot_handlers_bundle_change change ON change.bundle_id = bundle.id
                WHERE bundle.state = 'current' ORDER BY bundle.variant"""
        )
        self.assertEqual(
            changes,
            [
                (variant, "superseded", "drivers/NewDriver.py", "added", FIXTURE)
                for variant in ("all", "linux", "windows")
            ],
        )
        digests = self.query("SELECT variant, digest FROM iot_handlers_bundle WHERE state = 'current'")
        self.assertEqual({f"iot_update.handlers_digest.{variant}": digest for variant, digest in digests}, after)
        rows = self.query("SELECT platform, handlers_outdated, update_status FROM iot_box ORDER BY identifier")
        self.assertEqual(
            rows,
            [
                ("linux", True, "handlers_outdated"),
                ("windows", True, "handlers_outdated"),
                ("unknown", True, "handlers_outdated"),
            ],
        )
