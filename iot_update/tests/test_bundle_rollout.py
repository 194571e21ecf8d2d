# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Staged roll-out of drivers bundles, over real HTTP: the genuine 18.0 box's
download code and 19-style requests (identifier, ETag).

A held bundle reaches the canary boxes only; "Release to all" makes it reach
every box; "Roll back" serves the previous bundle's stored bytes again
(byte-identical, same ETag) while the folders still build the withdrawn one.
"""

import hashlib
import shutil
import tempfile
from pathlib import Path

from lxml import etree

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user

from odoo.addons.iot_update.models.iot_handlers_bundle import (
    DIGEST_PARAM,
    FINGERPRINT_PARAM,
    HELD_PARAM,
    bundle_cache,
)

from .handlers_common import LINUX_HANDLERS, LINUX_VERSION, HandlersFolderMixin, read_tree, unzip
from .iot_common import IotHttpCase
from .test_handlers_genuine_box import GENUINE_MODULE, HANDLERS_FOLDER, load_genuine_helpers, point_genuine_helpers

CANARY = "aa:bb:cc:20:00:01"
OTHER = "aa:bb:cc:20:00:02"
PINNED = "aa:bb:cc:20:00:03"  # automatic drivers update off
SERIAL = "SN-ROLLOUT-19"  # a 19-style box
#: The new version of one driver, which makes the next bundle.
NEW_PRINTER = {"drivers/PrinterDriver_L.py": b"# linux printer driver, new version\n" + b"PRINTER_L = 2\n" * 300}
NEW_LINUX_HANDLERS = {**LINUX_HANDLERS, **NEW_PRINTER}


class RolloutMixin(HandlersFolderMixin):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.helpers = load_genuine_helpers()
        cls.iot_admin = new_test_user(cls.env, "rollout_admin", groups="base.group_user,iot_update.group_iot_admin")
        cls.iot_user = new_test_user(cls.env, "rollout_user", groups="base.group_user,iot_update.group_iot_user")

    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        self.homes = {}
        self.current_mac = None
        point_genuine_helpers(self, self.helpers, lambda: self.current_mac, lambda: self.homes[self.current_mac])
        for mac in (CANARY, OTHER, PINNED):
            home = Path(tempfile.mkdtemp(prefix="iot_update_box_"))
            self.addCleanup(shutil.rmtree, home, ignore_errors=True)
            for kind in ("drivers", "interfaces"):
                (home / HANDLERS_FOLDER / kind).mkdir(parents=True)
            self.homes[mac] = home
            self.check_in(identifier=mac, version=LINUX_VERSION)
        self.check_in(identifier=SERIAL, mac="aa:bb:cc:20:00:19", version=LINUX_VERSION)
        self.box(CANARY).canary = True
        self.box(PINNED).drivers_auto_update = False
        self.Bundle = self.env["iot.handlers.bundle"]
        self.first = self.bundle_record("current")

    # What the boxes do -------------------------------------------------

    def download(self, mac, auto=True):
        """The genuine 18.0 box ``mac`` runs ``download_iot_handlers(auto)``;
        returns what its handlers folder holds."""
        self.env.flush_all()
        self.current_mac = mac
        with self.assertNoLogs(GENUINE_MODULE, "ERROR"):
            self.helpers.download_iot_handlers(auto=auto)
        self.env.invalidate_all()
        return read_tree(self.homes[mac] / HANDLERS_FOLDER)

    def post_19(self, etag=None, identifier=SERIAL, auto="True"):
        """A 19-style request: the identifier, and the ETag the box holds (unquoted)."""
        self.env.flush_all()
        response = self.opener.post(
            self.base_url() + "/iot/get_handlers",
            files={"identifier": (None, identifier), "auto": (None, auto)},
            headers={"If-None-Match": etag} if etag else None,
            timeout=30,
        )
        self.env.invalidate_all()
        return response

    # What the server does ----------------------------------------------

    def bundle_record(self, state, variant="linux"):
        return self.Bundle.search([("variant", "=", variant), ("state", "=", state)])

    def hold_new_bundles(self, hold=True):
        settings = self.env["iot.update.settings"].with_user(self.iot_admin).create({})
        settings.hold_bundles = hold
        settings.action_save()

    def change_drivers(self, files=None):
        """The folders change (an upgrade) and the cron notices it."""
        self.write_handlers(files or NEW_PRINTER)
        bundle_cache.clear()
        self.Bundle._cron_sync_digests()
        self.env.invalidate_all()


class TestStagedRollout(RolloutMixin, IotHttpCase):
    def test_held_bundle_reaches_only_canaries_until_released(self):
        old_pinned = {"drivers/PrinterDriver_L.py": b"# the pinned box's own printer driver\n"}
        (self.homes[PINNED] / HANDLERS_FOLDER / "drivers" / "PrinterDriver_L.py").write_bytes(
            old_pinned["drivers/PrinterDriver_L.py"]
        )
        for mac in (CANARY, OTHER):
            self.assertEqual(self.download(mac), LINUX_HANDLERS)
        self.assertEqual(self.download(PINNED), old_pinned)
        first = self.post_19()
        self.assertEqual(first.headers["ETag"], f'"{self.first.digest}"')

        self.hold_new_bundles()
        self.change_drivers()
        held = self.bundle_record("held")
        self.assertTrue(held)
        self.assertEqual(self.bundle_record("current"), self.first)
        self.assertEqual(held.previous_id, self.first)
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(params.get_param(DIGEST_PARAM % "linux"), self.first.digest)
        self.assertEqual(params.get_param(HELD_PARAM % "linux"), held.digest)

        # Held: the canary gets it, the others keep the current bundle.
        self.assertEqual(self.download(CANARY), NEW_LINUX_HANDLERS)
        self.assertEqual(self.download(OTHER), LINUX_HANDLERS)
        self.assertEqual(self.download(PINNED), old_pinned)
        self.assertEqual(self.post_19(self.first.digest).status_code, 304)
        self.assertEqual(self.box(CANARY).handlers_digest, held.digest)
        self.assertEqual(self.box(OTHER).handlers_digest, self.first.digest)
        self.assertEqual(self.box(CANARY).handlers_summary, "Trying the held bundle (roll-out)")
        self.assertEqual(self.box(OTHER).handlers_summary, "Current")
        self.assertEqual(held.box_count, 1)
        self.assertEqual((self.first.box_count, self.first.platform_box_count), (2, 4))

        held.with_user(self.iot_admin).action_release()
        self.env.invalidate_all()
        self.assertEqual((held.state, self.first.state), ("current", "superseded"))
        self.assertFalse(params.get_param(HELD_PARAM % "linux"))
        self.assertEqual(params.get_param(DIGEST_PARAM % "linux"), held.digest)
        self.assertEqual(self.download(OTHER), NEW_LINUX_HANDLERS)
        self.assertEqual(self.download(CANARY), NEW_LINUX_HANDLERS)
        self.assertEqual(self.box(CANARY).handlers_summary, "Current")
        self.assertEqual(self.download(PINNED), old_pinned)
        released = self.post_19(self.first.digest)
        self.assertEqual(released.status_code, 200)
        self.assertEqual(released.headers["ETag"], f'"{held.digest}"')
        self.assertEqual(unzip(released.content), NEW_LINUX_HANDLERS)
        self.assertFalse(self.box(PINNED).handlers_digest, "the pinned box never took a bundle")
        self.assertEqual((held.box_count, held.rollout_progress), (3, 75.0))

    def test_roll_back_serves_the_previous_bytes_again(self):
        first = self.post_19()
        self.assertEqual(self.download(OTHER), LINUX_HANDLERS)
        self.change_drivers()  # not held: current at once
        new = self.bundle_record("current")
        self.assertEqual(new.previous_id, self.first)
        self.assertEqual(self.first.state, "superseded")
        second = self.post_19(self.first.digest)
        self.assertEqual(second.headers["ETag"], f'"{new.digest}"')
        self.assertEqual(self.download(OTHER), NEW_LINUX_HANDLERS)

        with self.assertRaises(AccessError):
            new.with_user(self.iot_user).action_roll_back()
        new.with_user(self.iot_admin).action_roll_back()
        self.env.invalidate_all()
        self.assertEqual((new.state, self.first.state), ("withdrawn", "current"))
        # The folders still build the withdrawn bundle: served from the stored bytes.
        self.assertEqual(self.bundle_service()._get_bundle("linux").digest, new.digest)
        back = self.post_19(new.digest)
        self.assertEqual(back.status_code, 200)
        self.assertEqual(back.headers["ETag"], first.headers["ETag"])
        self.assertEqual(back.content, first.content)
        self.assertEqual(hashlib.sha256(back.content).hexdigest(), self.first.digest)
        self.assertEqual(self.post_19(self.first.digest).status_code, 304)
        self.assertEqual(self.download(OTHER), LINUX_HANDLERS)
        self.assertEqual(self.box(OTHER).handlers_summary, "Current")

        # Building the withdrawn bundle again is no change: nothing recorded, nothing flagged.
        self.env["ir.config_parameter"].sudo().search([("key", "=", FINGERPRINT_PARAM)]).unlink()
        bundle_cache.clear()
        self.assertEqual(self.Bundle._cron_sync_digests(), {})
        self.assertEqual(self.bundle_record("current"), self.first)
        self.assertEqual(self.download(OTHER), LINUX_HANDLERS)

    def test_pinned_box_keeps_its_drivers_and_loads_its_rollout_on_demand(self):
        self.hold_new_bundles()
        self.change_drivers()
        held = self.bundle_record("held")
        pinned = self.box(PINNED)
        self.assertEqual(self.download(PINNED), {})
        self.assertFalse(pinned.handlers_digest)
        # "Load handlers" on its homepage: what its roll-out says.
        self.assertEqual(self.download(PINNED, auto=False), LINUX_HANDLERS)
        self.assertEqual(pinned.handlers_digest, self.first.digest)
        pinned.canary = True
        self.assertTrue(pinned.handlers_outdated, "a canary is due the held bundle")
        self.assertTrue(pinned.handlers_summary.startswith("1 change behind, received "), pinned.handlers_summary)
        self.assertEqual(self.download(PINNED), LINUX_HANDLERS, "automatic requests stay refused")
        self.assertEqual(self.download(PINNED, auto=False), NEW_LINUX_HANDLERS)
        self.assertEqual(pinned.handlers_digest, held.digest)
        self.assertFalse(pinned.handlers_outdated)


class TestRolloutAccess(RolloutMixin, IotHttpCase):
    def test_only_iot_administrators_hold_release_and_roll_back(self):
        with self.assertRaises(AccessError):
            self.env["iot.update.settings"].with_user(self.iot_user).create({"hold_bundles": True})
        with self.assertRaises(AccessError):
            self.box(OTHER).with_user(self.iot_user).canary = True
        self.hold_new_bundles()
        self.change_drivers()
        held = self.bundle_record("held")
        for method in ("action_release", "action_roll_back"):
            for record in (held, self.first):
                with self.subTest(method=method, state=record.state), self.assertRaises(AccessError):
                    getattr(record.with_user(self.iot_user), method)()
        with self.assertRaises(AccessError):
            held.with_user(self.iot_admin).write({"state": "current"})
        self.assertEqual((held.state, self.first.state), ("held", "current"))
        held.with_user(self.iot_admin).action_release()
        self.assertEqual(held.state, "current")
        held.with_user(self.iot_admin).action_roll_back()
        self.assertEqual((held.state, self.first.state), ("withdrawn", "current"))

    def test_release_and_roll_back_are_logged_with_who_and_when(self):
        Log = self.env["iot.handlers.bundle.log"]
        self.hold_new_bundles()
        self.change_drivers()
        held = self.bundle_record("held")
        for method in ("action_release", "action_roll_back"):
            with self.assertRaises(AccessError):
                getattr(held.with_user(self.iot_user), method)()
        manual = ("hold_on", "hold_off", "released", "rolled_back", "restored")
        hold = Log.search([("action", "in", manual)])
        self.assertEqual(
            [(line.action, line.user_id, line.bundle_id) for line in hold], [("hold_on", self.iot_admin, self.Bundle)]
        )
        # Its roll-out was planned and its canary wave opened, by the server.
        self.assertEqual(
            [(line.action, line.user_id) for line in held.log_ids],
            [("wave_opened", self.env.ref("base.user_root")), ("rollout_started", self.env.ref("base.user_root"))],
        )
        planned = held.log_ids

        self.download(OTHER)
        self.download(CANARY)
        before = fields.Datetime.now()
        held.with_user(self.iot_admin).action_release()
        self.env.invalidate_all()
        released = held.log_ids - planned
        self.assertEqual(
            [(line.action, line.user_id, line.other_bundle_id) for line in released],
            [("released", self.iot_admin, self.first)],
        )
        self.assertGreaterEqual(released.date, before)
        # The box that held the first bundle is now due this one; the canary holds it, the
        # two others held none before and still do not.
        self.assertEqual(released.box_count, 1)

        held.with_user(self.iot_admin).action_roll_back()
        self.env.invalidate_all()
        self.assertEqual(
            [(line.action, line.user_id, line.other_bundle_id) for line in held.log_ids - planned],
            [("rolled_back", self.iot_admin, self.first), ("released", self.iot_admin, self.first)],
        )
        self.assertEqual(
            [(line.action, line.user_id, line.other_bundle_id) for line in self.first.log_ids],
            [("restored", self.iot_admin, held)],
        )
        # The canary (holding the withdrawn bundle) and the box that holds the first again.
        self.assertEqual((held.log_ids - planned)[0].box_count, 2)
        # IoT users read the log; nobody edits or deletes it, nor writes one by hand.
        as_user = Log.with_user(self.iot_user)
        self.assertEqual(as_user.search([]), Log.search([]))
        self.assertLessEqual(hold | held.log_ids | self.first.log_ids, as_user.search([]))
        self.assertEqual((held.log_ids - planned).with_user(self.iot_user).user_id.name, self.iot_admin.name)
        for user in (self.iot_user, self.iot_admin):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    released.with_user(user).write({"user_id": user.id})
                with self.assertRaises(AccessError):
                    released.with_user(user).unlink()
                with self.assertRaises(AccessError):
                    Log.with_user(user).create({"bundle_id": held.id, "action": "released"})
        self.assertEqual(len(Log.search([("action", "in", manual)])), 4)
        self.hold_new_bundles(False)
        self.assertEqual(
            (Log.search([], limit=1).action, Log.search([], limit=1).user_id), ("hold_off", self.iot_admin)
        )
        self.hold_new_bundles(False)
        self.assertEqual(len(Log.search([("action", "in", manual)])), 5, "a setting saved unchanged is no action")

    def test_buttons_for_administrators_and_no_bare_digest_on_the_box_form(self):
        def arch(user, model):
            result = self.env[model].with_user(user).get_views([(False, "form")])
            return etree.fromstring(result["views"]["form"]["arch"])

        for user, shown in ((self.iot_user, False), (self.iot_admin, True)):
            with self.subTest(user=user.login):
                form = arch(user, "iot.handlers.bundle")
                buttons = {button.get("name") for button in form.iter("button")}
                self.assertEqual({"action_release", "action_roll_back"} <= buttons, shown)
                box_fields = {field.get("name") for field in arch(user, "iot.box").iter("field")}
                self.assertIn("handlers_summary", box_fields)
                self.assertIn("handlers_bundle_id", box_fields)
                self.assertNotIn("handlers_digest", box_fields)
                self.assertNotIn("handlers_current_digest", box_fields)
