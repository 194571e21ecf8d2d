# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A handlers bundle change: noticed when the registry loads, the fleet flagged
once, set-based, off the box requests."""

import shutil
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from odoo.addons.iot_update.models import iot_handlers_bundle
from odoo.addons.iot_update.models.iot_box import IotBox
from odoo.addons.iot_update.models.iot_handlers_bundle import (
    DIGEST_PARAM,
    FINGERPRINT_PARAM,
    HELD_PARAM,
    NOTICED_PARAM,
    IotHandlersBundle,
    bundle_cache,
)
from odoo.addons.iot_update.tools.bundle import VARIANTS, build_bundle, scan
from odoo.addons.iot_update.tools.handlers_request import HandlersRequest

from .handlers_common import HANDLERS, LINUX_VERSION, WINDOWS_VERSION, HandlersFolderMixin
from .iot_common import IotCase, registry_lock_released

#: A module installed after the fact: one more handler file, for every platform.
NEW_MODULE_HANDLERS = {"drivers/NewModuleDriver.py": b"# a driver shipped by a newly installed module\n"}

#: Versions of the varied fleet: Linux current, old image, old series, newer
#: image; Windows current and old series; a test machine; nothing readable.
VERSIONS = (
    LINUX_VERSION,
    "L24.01-18.0#1a2b3c4",
    "L24.11-17.0#1a2b3c4",
    "L25.07-18.0#1a2b3c4",
    WINDOWS_VERSION,
    "W23.11-17.0-20241105",
    "T24.11-18.0#1a2b3c4",
    "",
)


def handlers_request(mac):
    return HandlersRequest("", mac, True, True)


class BundleChangeMixin(HandlersFolderMixin):
    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        self.old_digests = self.bundle_service()._current_digests()

    def install_module_handlers(self):
        """As if a module shipping handlers were installed: one more root."""
        base = Path(tempfile.mkdtemp(prefix="iot_update_test_module_"))
        self.addCleanup(shutil.rmtree, base, ignore_errors=True)
        root = base / "new_module" / "iot_handlers"
        for entry, data in NEW_MODULE_HANDLERS.items():
            (root / entry).parent.mkdir(parents=True, exist_ok=True)
            (root / entry).write_bytes(data)
        roots = IotHandlersBundle._handler_roots
        patcher = patch.object(IotHandlersBundle, "_handler_roots", lambda model: [*roots(model), str(root)])
        patcher.start()
        self.addCleanup(patcher.stop)
        bundle_cache.clear()

    def make_box(self, number, version, digest=None, offline=False, active=True):
        identifier = f"aa:bb:cc:00:{number // 256:02x}:{number % 256:02x}"
        self.check_in(identifier=identifier, version=version)
        box = self.box(identifier)
        vals = {"handlers_digest": digest, "handlers_date": fields.Datetime.now() if digest else False}
        if offline:
            vals["last_contact"] = fields.Datetime.now() - timedelta(days=30)
        box.write(vals)
        if not active:
            box.action_archive()
        return box

    def current_fleet(self, count):
        """``count`` boxes of every variant holding the current bundle of their platform."""
        boxes = self.Box.browse()
        for number in range(count):
            version = VERSIONS[number % len(VERSIONS)]
            box = self.make_box(number, version)
            box.handlers_digest = self.bundle_service()._current_digests()[box_variant(box)]
            boxes |= box
        return boxes

    def stored_flags(self, boxes):
        boxes.flush_recordset()
        self.env.cr.execute(
            "SELECT id, handlers_outdated, update_status FROM iot_box WHERE id IN %s ORDER BY id", [tuple(boxes.ids)]
        )
        return self.env.cr.fetchall()


def box_variant(box):
    return box.platform if box.platform in ("linux", "windows") else "all"


class TestNoticedAtRegistryLoad(BundleChangeMixin, IotCase):
    def load_registry_hook(self):
        """Run the hook as loading the registry does (not as a re-setup of a
        loaded registry, which skips it)."""
        with patch.object(self.env.registry, "ready", False):
            self.bundle_service()._register_hook()

    def test_module_install_flags_every_variant_at_registry_load(self):
        boxes = self.current_fleet(len(VERSIONS))
        self.assertEqual(set(boxes.mapped(box_variant)), {"all", "linux", "windows"})
        up_to_date = boxes.filtered(lambda box: box.update_status == "up_to_date")
        self.assertEqual(set(up_to_date.mapped(box_variant)), {"all", "linux", "windows"})
        self.assertFalse(any(boxes.mapped("handlers_outdated")))
        statuses = {box: box.update_status for box in boxes}

        self.install_module_handlers()
        self.load_registry_hook()

        params = self.env["ir.config_parameter"].sudo()
        for variant in VARIANTS:
            self.assertNotEqual(params.get_param(DIGEST_PARAM % variant), self.old_digests[variant])
            self.assertEqual(
                params.get_param(DIGEST_PARAM % variant), self.bundle_service()._get_bundle(variant).digest
            )
        self.assertTrue(all(boxes.mapped("handlers_outdated")), "every variant's boxes hold the old bundle")
        self.assertEqual(set(up_to_date.mapped("update_status")), {"handlers_outdated"})
        for box in boxes - up_to_date:  # a worse status stays
            self.assertEqual(box.update_status, statuses[box])

    def test_upgrade_changing_a_handler_is_noticed(self):
        box = self.make_box(1, WINDOWS_VERSION, digest=self.old_digests["windows"])
        self.assertEqual(box.update_status, "up_to_date")
        self.write_handlers({"interfaces/SerialInterface.py": b"# serial interface, upgraded\n"})
        bundle_cache.clear()
        self.load_registry_hook()
        self.assertEqual(box.update_status, "handlers_outdated")

    def test_registry_load_with_nothing_changed_builds_and_writes_nothing(self):
        box = self.make_box(1, LINUX_VERSION, digest=self.old_digests["linux"])
        self.env.flush_all()
        with (
            patch.object(iot_handlers_bundle, "build_bundle") as build,
            patch.object(IotHandlersBundle, "_record_digests") as record,
            self.assertQueryCount(1),  # the recorded fingerprint
        ):
            self.env.registry.clear_cache()
            self.load_registry_hook()
        build.assert_not_called()
        record.assert_not_called()
        self.assertEqual(box.update_status, "up_to_date")

    def test_same_bundle_from_other_files_records_the_fingerprint_only(self):
        """Rewritten with the same content (new dates): built once, nothing flagged."""
        self.make_box(1, LINUX_VERSION, digest=self.old_digests["linux"])
        params = self.env["ir.config_parameter"].sudo()
        fingerprint = params.get_param(FINGERPRINT_PARAM)
        self.write_handlers({entry: data for entry, data in HANDLERS.items()})
        bundle_cache.clear()
        with patch.object(IotHandlersBundle, "_flag_handlers") as flag:
            self.assertEqual(self.bundle_service()._notice_bundle_change(), {})
        flag.assert_not_called()
        self.assertNotEqual(params.get_param(FINGERPRINT_PARAM), fingerprint)

    def test_hook_skipped_when_a_loaded_registry_is_set_up_again(self):
        self.install_module_handlers()
        with patch.object(IotHandlersBundle, "_notice_bundle_change") as notice:
            self.bundle_service()._register_hook()  # the registry is ready
        notice.assert_not_called()


class TestSetBasedFlagging(BundleChangeMixin, IotCase):
    def varied_fleet(self):
        """Boxes of every version, online and offline, archived or not,
        holding the old bundle of their platform, another one, or none."""
        boxes = self.Box.browse()
        holds = ("current", "other", None)
        number = 0
        for version in VERSIONS:
            for held in holds:
                for offline in (False, True):
                    number += 1
                    box = self.make_box(number, version, offline=offline, active=number % 5 != 0)
                    variant = box_variant(box)
                    digest = {"current": self.old_digests[variant], "other": "0" * 64, None: False}[held]
                    box.handlers_digest = digest
                    boxes |= box
        boxes._refresh_update_status()
        return boxes

    def test_set_based_flags_equal_the_orm_compute(self):
        boxes = self.varied_fleet()
        before = self.stored_flags(boxes)
        self.install_module_handlers()
        with patch.object(IotBox, "_compute_update_status") as compute:
            changed = self.bundle_service()._notice_bundle_change()
        compute.assert_not_called()
        set_based = self.stored_flags(boxes)
        self.assertNotEqual(set_based, before)
        self.assertEqual(set(changed), {"all", "linux", "windows"})
        flipped = {row[0] for row in set(set_based) - set(before)}
        self.assertEqual(flipped, set().union(*(boxes.ids for boxes in changed.values())))
        # The ORM's compute of every flag, against the digests now recorded.
        boxes._refresh_update_status()
        self.assertEqual(self.stored_flags(boxes), set_based)

    def test_changed_back_flags_nothing_twice(self):
        boxes = self.varied_fleet()
        service = self.bundle_service()
        before = self.stored_flags(boxes)
        old = self.built_bundles()
        self.write_handlers({"drivers/SerialScaleDriver.py": b"# scale driver, changed\n"})
        new = self.built_bundles()
        self.assertEqual(set(service._record_digests(new, "fingerprint 1")), set(VARIANTS))
        self.assertEqual(service._record_digests(new, "fingerprint 1"), {})
        service._record_digests(old, "fingerprint 2")
        self.assertEqual(self.stored_flags(boxes), before)

    def built_bundles(self):
        files = scan(self.bundle_service()._handler_roots()).files
        return {variant: build_bundle(files, variant) for variant in VARIANTS}


class TestRequestsDoNotWaitForTheFleet(BundleChangeMixin, IotCase):
    def serve(self, mac):
        return self.bundle_service()._serve_handlers(handlers_request(mac))

    def queries_of_a_request_after_a_change(self, fleet_size):
        """Queries of the first handlers request after a bundle change the
        recorded digests do not know yet, with ``fleet_size`` other boxes."""
        self.current_fleet(fleet_size)
        asking = self.make_box(9999, LINUX_VERSION, digest=self.old_digests["linux"])
        self.write_handlers({"drivers/PrinterDriver_L.py": b"# linux printer driver, fixed\n"})
        bundle_cache.clear()
        self.bundle_service()._get_bundle("linux")  # built: the bundle's cost is not the fleet's
        self.env.flush_all()
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        with patch.object(
            IotBox, "_refresh_update_status", autospec=True, side_effect=IotBox._refresh_update_status
        ) as refresh:
            answer = self.serve(asking.mac or asking.identifier)
            self.env.flush_all()
        count = self.env.cr.sql_log_count - before
        self.assertEqual(answer.kind, "delivery")
        self.assertEqual([call.args[0] for call in refresh.call_args_list], [asking])
        self.assertEqual((asking.handlers_digest, asking.update_status), (answer.bundle.digest, "up_to_date"))
        return count

    def test_query_count_does_not_grow_with_the_fleet(self):
        with self.env.cr.savepoint(flush=False) as savepoint:
            alone = self.queries_of_a_request_after_a_change(0)
            savepoint.rollback()
        iot_handlers_bundle._triggered.clear()
        bundle_cache.clear()
        self.env.registry.clear_cache()
        self.env.invalidate_all()
        with_fleet = self.queries_of_a_request_after_a_change(300)
        self.assertEqual(with_fleet, alone)
        # The others still hold the old bundle: flagged by the cron, not by the request.
        flagged = self.Box.search_count([("handlers_outdated", "=", True)])
        self.assertEqual(flagged, 0)
        self.bundle_service()._cron_sync_digests()
        self.assertEqual(
            self.Box.search_count([("handlers_outdated", "=", True), ("platform", "=", "linux")]),
            self.Box.search_count([("platform", "=", "linux")]) - 1,
        )


@tagged("post_install", "-at_install")
class TestOncePerChange(BundleChangeMixin, IotCase):
    """Processes noticing the same change at once (workers loading the
    registry together): one records it and flags the fleet, in transactions
    of their own, committed."""

    def setUp(self):
        super(BundleChangeMixin, self).setUp()
        # Nothing recorded in the test's transaction: its row locks would
        # hold up the workers' transactions.
        self.setup_handlers_folder(record=False)
        sources = scan(self.bundle_service()._handler_roots())
        self.old_digests = {variant: build_bundle(sources.files, variant).digest for variant in VARIANTS}
        values = {FINGERPRINT_PARAM: sources.fingerprint}
        for variant, digest in self.old_digests.items():
            values.update({DIGEST_PARAM % variant: digest, NOTICED_PARAM % variant: digest, HELD_PARAM % variant: ""})
        with self.registry.cursor() as cr:
            cr.execute("SELECT key, value FROM ir_config_parameter WHERE key IN %s", [tuple(values)])
            saved = dict(cr.fetchall())
            # The bundle records the workers will change, as they are.
            cr.execute("SELECT id, state, retired_date FROM iot_handlers_bundle")
            self.saved_bundles = cr.fetchall()
            # The committed state the workers start from: the test folder's digests.
            for key, value in values.items():
                cr.execute(
                    "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [key, value],
                )
        self.env.registry.clear_cache()
        self.addCleanup(self.restore, saved)
        with self.registry.cursor() as cr:
            env = self.env(cr=cr)
            boxes = env["iot.box"].create(
                [
                    {
                        "name": f"once-{number}",
                        "identifier": f"once-{number}",
                        "version": VERSIONS[number % 6],
                        "last_contact": fields.Datetime.now(),
                    }
                    for number in range(30)
                ]
            )
            for box in boxes:
                box.handlers_digest = self.old_digests[box_variant(box)]
            self.box_ids = boxes.ids

    def restore(self, saved):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM iot_box WHERE identifier LIKE 'once-%%'")
            keys = [FINGERPRINT_PARAM] + [
                param % variant for variant in VARIANTS for param in (DIGEST_PARAM, NOTICED_PARAM, HELD_PARAM)
            ]
            cr.execute("DELETE FROM ir_config_parameter WHERE key IN %s", [tuple(keys)])
            Bundle = self.env(cr=cr)["iot.handlers.bundle"].sudo()
            Bundle.search([("id", "not in", [row[0] for row in self.saved_bundles])]).unlink()
            for bundle_id, state, retired_date in self.saved_bundles:
                cr.execute(
                    "UPDATE iot_handlers_bundle SET state = %s, retired_date = %s WHERE id = %s",
                    [state, retired_date, bundle_id],
                )
            for key, value in saved.items():
                cr.execute("INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)", [key, value])
        self.env.registry.clear_cache()

    def test_locked_rows_leave_the_change_to_the_cron(self):
        """A registry load whose transaction would wait for a lock (an upgrade
        holding the bundles' rows) records nothing and triggers the cron."""
        self.install_module_handlers()
        results, errors = [], []

        def worker():
            try:
                with self.registry.cursor() as cr:
                    results.append(self.env(cr=cr)["iot.handlers.bundle"]._notice_bundle_change())
            except Exception as error:
                errors.append(error)

        thread = threading.Thread(target=worker)
        with self.registry.cursor() as locker:
            locker.execute("SELECT id FROM iot_handlers_bundle WHERE state IN ('current', 'held') FOR UPDATE")
            with (
                patch.object(IotHandlersBundle, "_notice_lock_timeout", "200ms"),
                registry_lock_released(),
                patch.object(IotHandlersBundle, "_trigger_sync", autospec=True) as trigger_sync,
            ):
                thread.start()
                thread.join(60)
            locker.rollback()
        self.assertFalse(thread.is_alive(), "the load waited for the lock")
        self.assertEqual((errors, results), ([], [{}]))
        self.assertEqual(trigger_sync.call_count, 1, "the cron will record it")
        with self.registry.cursor() as cr:
            env = self.env(cr=cr)
            self.assertEqual(env["iot.handlers.bundle"]._current_digests(), self.old_digests, "nothing recorded")

    def test_concurrent_processes_flag_the_fleet_once(self):
        self.install_module_handlers()
        workers = 4
        start = threading.Barrier(workers)
        flagged, errors = [], []
        record = IotHandlersBundle._record_digests
        flag = IotHandlersBundle._flag_handlers

        def record_together(model, bundles, fingerprint, modules=None):
            start.wait(timeout=30)  # every worker has read the old state
            return record(model, bundles, fingerprint, modules)

        def counting_flag(model, variant, digest, held=None):
            boxes = flag(model, variant, digest, held)
            flagged.append((variant, len(boxes)))
            return boxes

        def worker():
            try:
                with self.registry.cursor() as cr:
                    self.env(cr=cr)["iot.handlers.bundle"]._notice_bundle_change()
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=worker) for __ in range(workers)]
        with (
            patch.object(IotHandlersBundle, "_record_digests", record_together),
            patch.object(IotHandlersBundle, "_flag_handlers", counting_flag),
            self.assertNoLogs("odoo.sql_db", "ERROR"),
            registry_lock_released(),
        ):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        self.assertEqual([thread for thread in threads if thread.is_alive()], [], "a worker still running: deadlock")
        self.assertEqual(errors, [])
        self.assertEqual(sorted(variant for variant, __ in flagged), sorted(VARIANTS), "one flagging per variant")
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FILTER (WHERE handlers_outdated), count(*) FROM iot_box WHERE id IN %s",
                [tuple(self.box_ids)],
            )
            outdated, total = cr.fetchone()
        self.assertEqual((outdated, total), (30, 30))
        self.assertEqual(sum(count for __, count in flagged), 30)
