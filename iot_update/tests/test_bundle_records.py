# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Drivers bundles as records: what changed, who has it, the dashboard
following the roll-out, retention, and the records of an upgraded database."""

import base64
import hashlib
import importlib.util
from datetime import timedelta
from pathlib import Path

import psycopg2.errors

from odoo import fields
from odoo.tests import warmup
from odoo.tools import mute_logger

from odoo.addons.iot_update.models.iot_handlers_bundle import (
    DIGEST_PARAM,
    FINGERPRINT_PARAM,
    HOLD_PARAM,
    NOTICED_PARAM,
    bundle_cache,
)
from odoo.addons.iot_update.tools.bundle import VARIANTS
from odoo.addons.iot_update.tools.handlers_request import HandlersRequest

from .handlers_common import HANDLERS, LINUX_VERSION, HandlersFolderMixin, unzip
from .iot_common import IotCase


def request(mac, auto=True):
    return HandlersRequest("", mac, auto, True)


class BundleRecordsMixin(HandlersFolderMixin):
    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        self.Bundle = self.env["iot.handlers.bundle"]
        self.params = self.env["ir.config_parameter"].sudo()

    def change(self, files=None, remove=()):
        self.write_handlers(files or {})
        for entry in remove:
            (self.handlers_root / entry).unlink()
        bundle_cache.clear()
        self.Bundle._cron_sync_digests()
        self.env.invalidate_all()

    def bundle(self, state="current", variant="linux"):
        return self.Bundle.search([("variant", "=", variant), ("state", "=", state)])

    def linux_box(self, number, canary=False):
        identifier = f"aa:bb:cc:30:00:{number:02x}"
        self.check_in(identifier=identifier, version=LINUX_VERSION)
        box = self.box(identifier)
        box.canary = canary
        return box

    def serve(self, box, auto=True):
        return self.bundle_service()._serve_handlers(request(box.identifier, auto))


class TestBundleRecords(BundleRecordsMixin, IotCase):
    def test_a_record_per_variant_with_its_files_and_bytes(self):
        for variant in VARIANTS:
            record = self.bundle(variant=variant)
            built = self.bundle_service()._get_bundle(variant)
            self.assertEqual(len(record), 1)
            self.assertEqual(record.digest, built.digest)
            self.assertEqual(base64.b64decode(record.data), built.data)
            self.assertEqual((record.size, record.file_count), (len(built.data), len(built.entries)))
            files = unzip(built.data)
            self.assertEqual(
                {(line.path, line.sha256, line.size, line.module) for line in record.file_ids},
                {(path, hashlib.sha256(data).hexdigest(), len(data), "iot_test_addon") for path, data in files.items()},
            )
            self.assertEqual(self.params.get_param(DIGEST_PARAM % variant), record.digest)
            self.assertEqual(self.params.get_param(NOTICED_PARAM % variant), record.digest)

    def test_changes_since_the_previous_bundle(self):
        first = self.bundle()
        self.change(
            {"drivers/NewScannerDriver_L.py": b"# scanner\n", "interfaces/SerialInterface.py": b"# serial v2\n"},
            remove=["interfaces/USBInterface_L.py"],
        )
        second = self.bundle()
        self.assertEqual(second.previous_id, first)
        self.assertEqual(first.state, "superseded")
        self.assertTrue(first.retired_date)
        self.assertEqual(
            {(change.path, change.change, change.module) for change in second.change_ids},
            {
                ("drivers/NewScannerDriver_L.py", "added", "iot_test_addon"),
                ("interfaces/SerialInterface.py", "changed", "iot_test_addon"),
                ("interfaces/USBInterface_L.py", "removed", "iot_test_addon"),
            },
        )
        self.assertEqual(second.change_count, 3)
        # The Windows bundle has neither Linux file: only the serial interface changed.
        windows = self.bundle(variant="windows")
        self.assertEqual(windows.change_ids.mapped("path"), ["interfaces/SerialInterface.py"])

    def test_box_shows_its_bundle_in_words(self):
        box = self.linux_box(1)
        self.assertEqual(box.handlers_summary, "No drivers received yet")
        self.serve(box)
        first = self.bundle()
        self.assertEqual((box.handlers_summary, box.handlers_bundle_id), ("Current", first))
        self.change({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        self.change({"drivers/SerialScaleDriver.py": b"# scale v3\n"})
        self.assertTrue(box.handlers_summary.startswith("2 changes behind, received "), box.handlers_summary)
        self.assertEqual(box.handlers_bundle_id, first)
        box.write({"handlers_digest": "0" * 64})
        self.assertTrue(box.handlers_summary.startswith("Older bundle (unknown), received "), box.handlers_summary)
        self.assertFalse(box.handlers_bundle_id)

    def test_dashboard_follows_the_rollout(self):
        canary, other = self.linux_box(1, canary=True), self.linux_box(2)
        for box in (canary, other):
            self.serve(box)
        first = self.bundle()
        self.params.set_param(HOLD_PARAM, "True")
        self.change({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        held = self.bundle("held")
        self.assertTrue(held)
        outdated = self.Box.search([("handlers_outdated", "=", True)])
        self.assertEqual(outdated, canary, "the canary is due the held bundle; the other holds its own")
        self.assertEqual(other.update_status, "up_to_date")
        self.assertEqual(canary.update_status, "handlers_outdated")
        self.assertEqual(canary.handlers_current_digest, held.digest)
        self.assertEqual(other.handlers_current_digest, first.digest)
        # The set-based flags are those of the ORM's compute.
        flags = [(box.handlers_outdated, box.update_status) for box in (canary, other)]
        (canary | other)._refresh_update_status()
        self.assertEqual([(box.handlers_outdated, box.update_status) for box in (canary, other)], flags)

        self.serve(canary)
        self.assertFalse(self.Box.search([("handlers_outdated", "=", True)]))
        # A box that stops being a canary is due the current bundle again.
        canary.canary = False
        self.assertTrue(canary.handlers_outdated)
        canary.canary = True
        self.assertFalse(canary.handlers_outdated)

        held.action_release()
        self.assertEqual(self.Box.search([("handlers_outdated", "=", True)]), other)
        self.serve(other)
        self.assertFalse(self.Box.search([("handlers_outdated", "=", True)]))
        held.action_roll_back()
        self.assertEqual(self.Box.search([("handlers_outdated", "=", True)]), canary | other)
        self.assertEqual(self.serve(other).bundle.digest, first.digest)
        self.assertFalse(other.handlers_outdated)

    def test_history_links_each_delivery_to_its_bundle(self):
        canary, other = self.linux_box(1, canary=True), self.linux_box(2)
        first = self.bundle()
        self.params.set_param(HOLD_PARAM, "True")
        self.change({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        held = self.bundle("held")
        for box in (canary, other):
            self.serve(box)
        self.env.flush_all()
        self.env.invalidate_all()
        Event = self.env["iot.box.event"]
        deliveries = Event.search([("kind", "=", "delivery"), ("box_id", "in", (canary | other).ids)])
        self.assertEqual({(event.box_id, event.bundle_id) for event in deliveries}, {(canary, held), (other, first)})
        # The same digest on two platforms: the event's box says which record.
        # Noticed after the held one (not the copied windows date, same second or not), so found first.
        same = self.bundle(variant="windows").copy(
            {"state": "superseded", "digest": held.digest, "noticed_date": held.noticed_date + timedelta(seconds=1)}
        )
        self.assertEqual(self.Bundle.search([("digest", "=", held.digest)], limit=1), same, "found first by digest")
        self.env.invalidate_all()
        self.assertEqual(deliveries.filtered(lambda event: event.box_id == canary).bundle_id, held)
        # Read for the events shown at once: one query for their bundles.
        self.env.invalidate_all()
        deliveries = Event.browse(deliveries.ids)
        deliveries.mapped("bundle_digest")
        deliveries.mapped("box_id.platform")
        with self.assertQueryCount(1):
            deliveries.mapped("bundle_id")
        # A check-in has no bundle.
        checkin = Event.search([("kind", "in", ("checkin", "admission")), ("box_id", "=", canary.id)], limit=1)
        self.assertTrue(checkin)
        self.assertFalse(checkin.bundle_id)

    def test_a_new_change_replaces_the_held_bundle(self):
        self.params.set_param(HOLD_PARAM, "True")
        first = self.bundle()
        self.change({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        held = self.bundle("held")
        self.change({"drivers/SerialScaleDriver.py": b"# scale v3\n"})
        replacing = self.bundle("held")
        self.assertNotEqual(replacing, held)
        self.assertEqual(held.state, "withdrawn")
        self.assertEqual((replacing.previous_id, self.bundle()), (first, first))
        # Changed back to the current bundle: nothing held any more.
        self.change({"drivers/SerialScaleDriver.py": HANDLERS["drivers/SerialScaleDriver.py"]})
        self.assertFalse(self.bundle("held"))
        self.assertEqual(self.bundle(), first)

    def test_a_change_not_yet_recorded_waits_when_bundles_are_held(self):
        box = self.linux_box(1)
        first = self.bundle()
        self.params.set_param(HOLD_PARAM, "True")
        self.write_handlers({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        bundle_cache.clear()
        answer = self.serve(box)
        self.assertNotEqual(self.bundle_service()._get_bundle("linux").digest, first.digest)
        self.assertEqual(answer.bundle.digest, first.digest, "the current bundle, from its record")
        self.assertEqual((box.handlers_digest, box.update_status), (first.digest, "up_to_date"))
        cron = self.env.ref("iot_update.ir_cron_sync_handlers_digests")
        self.assertTrue(self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]))
        # Without holding, the new bundle goes out at once, as it becomes current when recorded.
        self.params.set_param(HOLD_PARAM, False)
        self.assertNotEqual(self.serve(box).bundle.digest, first.digest)
        self.assertEqual(box.update_status, "up_to_date")

    def test_one_current_and_one_held_bundle_per_platform(self):
        with self.assertRaises(psycopg2.errors.UniqueViolation), mute_logger("odoo.sql_db"):
            self.bundle().copy({"digest": "0" * 64})

    @warmup
    def test_a_stored_bundle_costs_a_delivery_no_more_queries(self):
        canary = self.linux_box(1, canary=True)
        self.params.set_param(HOLD_PARAM, "True")
        self.change({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        # The folders build the held bundle: the current one comes from its record.
        other = self.linux_box(2)
        for box in (canary, other):
            self.serve(box)  # each bundle read once by this process
        self.env.flush_all()
        self.env.invalidate_all()
        for box in (canary, other):
            with self.subTest(canary=box.canary), self.assertQueryCount(default=3):
                self.assertEqual(self.serve(box).kind, "delivery")

    def test_retention_purges_what_no_box_holds(self):
        old_box = self.linux_box(1)
        self.serve(old_box)
        first = self.bundle()
        self.change({"drivers/SerialScaleDriver.py": b"# scale v1.5\n"})
        archived_box = self.linux_box(2)
        self.serve(archived_box)
        archived_box.active = False
        held_by_archived = self.bundle()
        self.change({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        unheld = self.bundle()
        self.change({"drivers/SerialScaleDriver.py": b"# scale v3\n"})
        previous = self.bundle()
        self.change({"drivers/SerialScaleDriver.py": b"# scale v4\n"})
        current = self.bundle()
        self.params.set_param(HOLD_PARAM, "True")
        self.change({"drivers/SerialScaleDriver.py": b"# scale v5\n"})
        withdrawn = self.bundle("held")
        self.change({"drivers/SerialScaleDriver.py": b"# scale v6\n"})
        held = self.bundle("held")
        self.assertEqual(withdrawn.state, "withdrawn")
        self.assertEqual(current.previous_id, previous)
        self.assertEqual((current.state, held.state), ("current", "held"))
        linux = first | held_by_archived | unheld | previous | current | withdrawn | held
        retention = self.env["iot.box.event"]._get_retention_days()
        long_ago = fields.Datetime.now() - timedelta(days=retention + 1)
        # Every one retired long ago, even the current and held ones (a date left from
        # an earlier life): what keeps those two is their state.
        linux.write({"retired_date": long_ago})
        recent = self.bundle("superseded", "windows")
        attachments = (
            self.env["ir.attachment"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "iot.handlers.bundle"),
                    ("res_field", "=", "data"),
                    ("res_id", "in", (unheld | withdrawn).ids),
                ]
            )
        )
        self.assertEqual(len(attachments), 2)

        self.env["iot.box.event"]._cron_purge_events()

        self.assertEqual(linux.exists(), first | held_by_archived | previous | current | held)
        self.assertEqual(held_by_archived.digest, archived_box.handlers_digest, "an archived box keeps its bundle")
        self.assertFalse(attachments.exists())
        self.assertTrue(recent.exists(), "retired within the retention")
        self.assertTrue(previous.data, "the roll back target keeps its bytes")


class TestUpgradedDatabase(BundleRecordsMixin, IotCase):
    def test_bundles_recorded_at_the_first_registry_load_after_the_upgrade(self):
        """A database of 18.0.1.1.0: digests in parameters, no records."""
        box = self.linux_box(1)
        self.serve(box)
        digests = {variant: self.params.get_param(DIGEST_PARAM % variant) for variant in VARIANTS}
        unknown = self.linux_box(2)
        unknown.write({"handlers_digest": "0" * 64, "handlers_date": fields.Datetime.now()})
        self.Bundle.search([]).unlink()
        self.params.search([("key", "in", [NOTICED_PARAM % variant for variant in VARIANTS])]).unlink()
        path = Path(__file__).parent.parent / "migrations" / "18.0.1.2.0" / "post-migration.py"
        spec = importlib.util.spec_from_file_location("iot_update_migration_18_0_1_2_0", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)

        migration.migrate(self.env.cr, "18.0.1.1.0")
        self.assertFalse(self.params.get_param(FINGERPRINT_PARAM))
        # What the registry's load runs after the upgrade (_register_hook).
        self.bundle_service()._notice_bundle_change()

        for variant in VARIANTS:
            record = self.bundle(variant=variant)
            self.assertEqual(record.digest, digests[variant])
        self.assertEqual((box.handlers_summary, box.update_status), ("Current", "up_to_date"))
        self.assertTrue(unknown.handlers_summary.startswith("Older bundle (unknown), received "))
