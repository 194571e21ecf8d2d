# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Check-in (POST /iot/setup): admission, token binding, versions, devices."""

from unittest.mock import patch

import psycopg2.errors
from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import ValidationError

from odoo.addons.iot_update.models.iot_box import hash_token

from .iot_common import BOX_LOGGER, PRINTER, SCALE, IotCase


class TestCheckIn(IotCase):
    def test_unknown_box_admitted_with_pairing_token(self):
        channel = self.check_in(devices={"usb_printer": PRINTER})
        box = self.box()
        self.assertEqual(channel, box._get_channel())
        self.assertEqual(box.name, "iotbox-01")
        self.assertEqual(box.ip, "192.168.1.20")
        self.assertEqual(
            (box.platform, box.image_version, box.code_version, box.code_commit), ("linux", "24.11", "18.0", "1a2b3c4")
        )
        self.assertTrue(box.drivers_auto_update)
        self.assertEqual(box.token_hash, hash_token(self.token))
        self.assertEqual(box.device_ids.mapped("identifier"), ["usb_printer"])
        self.assertTrue(box.last_contact)

    def test_pairing_token_exists_and_is_long(self):
        self.assertGreaterEqual(len(self.token), 10)

    def test_unknown_box_with_wrong_token_is_not_created(self):
        for token in ("wrong", "", self.token[:-1]):
            with self.subTest(token=token), self.assertLogs(BOX_LOGGER, "WARNING") as logs:
                self.assertEqual(self.check_in(token=token, devices={"usb_printer": PRINTER}), "")
            self.assertIn("aa:bb:cc:dd:ee:01", logs.output[0])
            self.assertFalse(self.box())
            self.assertFalse(self.env["iot.device"].search([("identifier", "=", "usb_printer")]))

    def test_version_kept_current(self):
        self.check_in(version="L24.01-17.0#aaaaaaa")
        self.check_in(version="L25.07-18.0#bbbbbbb", name="renamed", ip="10-0-0-7.abcd.odoo-iot.com")
        box = self.box()
        self.assertEqual(box.version, "L25.07-18.0#bbbbbbb")
        self.assertEqual((box.image_version, box.code_version, box.code_commit), ("25.07", "18.0", "bbbbbbb"))
        self.assertEqual(box.name, "renamed")
        self.assertEqual(box.ip, "10-0-0-7.abcd.odoo-iot.com")
        self.assertEqual(self.Box.search_count([("identifier", "=", "aa:bb:cc:dd:ee:01")]), 1)

    def test_last_contact_moves_on_every_call(self):
        with freeze_time("2026-01-01 10:00:00"):
            self.check_in()
        with freeze_time("2026-01-02 11:00:00"):
            self.check_in()
        self.assertEqual(self.box().last_contact, fields.Datetime.to_datetime("2026-01-02 11:00:00"))

    def test_token_binding(self):
        self.check_in()
        old_token = self.token
        new_token = self.Box._generate_pairing_token()
        # The token the box was admitted with still works after a new pairing token...
        self.check_in(token=old_token, version="L25.07-18.0#ccccccc")
        self.assertEqual(self.box().version, "L25.07-18.0#ccccccc")
        # ... so does the new pairing token, which the box then is bound to.
        self.check_in(token=new_token, version="L25.07-18.0#ddddddd")
        self.assertEqual(self.box().token_hash, hash_token(new_token))
        # Any other token changes nothing, even with a known identifier.
        with self.assertLogs(BOX_LOGGER, "WARNING") as logs:
            self.check_in(token="stolen", version="L20.01-16.0#eeeeeee", name="evil", devices={"x": PRINTER})
        self.assertIn("wrong token", logs.output[0])
        box = self.box()
        self.assertEqual((box.version, box.name), ("L25.07-18.0#ddddddd", "iotbox-01"))
        self.assertFalse(box.device_ids)

    def test_devices_connected_and_disconnected(self):
        self.check_in(devices={"usb_printer": PRINTER, "serial_scale": SCALE})
        box = self.box()
        self.assertEqual(sorted(box.device_ids.mapped("identifier")), ["serial_scale", "usb_printer"])
        self.assertTrue(all(box.device_ids.mapped("connected")))
        printer = box.device_ids.filtered(lambda d: d.identifier == "usb_printer")
        self.assertEqual(
            (printer.name, printer.type, printer.manufacturer, printer.connection),
            ("Epson TM-T20", "printer", "Epson", "usb"),
        )

        self.check_in(devices={"usb_printer": dict(PRINTER, name="Epson TM-T88")})
        self.assertEqual(len(box.device_ids), 2)
        self.assertEqual(printer.name, "Epson TM-T88")
        self.assertTrue(printer.connected)
        self.assertFalse(box.device_ids.filtered(lambda d: d.identifier == "serial_scale").connected)

        self.check_in(devices={"usb_printer": PRINTER, "serial_scale": SCALE})
        self.assertTrue(all(box.device_ids.mapped("connected")))
        self.assertEqual(len(box.device_ids), 2)

    def test_19_box_with_serial_and_mac(self):
        self.check_in(identifier="SN-ABC-123", mac="aa:bb:cc:dd:ee:09", version="L25.07-19.0#1234567")
        box = self.box("SN-ABC-123")
        self.assertEqual(box.mac, "aa:bb:cc:dd:ee:09")

    def test_box_upgraded_to_serial_identifier_is_the_same_box(self):
        self.check_in(identifier="aa:bb:cc:dd:ee:05")
        box = self.box("aa:bb:cc:dd:ee:05")
        self.check_in(identifier="SN-0005", mac="aa:bb:cc:dd:ee:05", version="L25.07-19.0#1234567")
        self.assertEqual(box.identifier, "SN-0005")
        self.assertEqual(box.mac, "aa:bb:cc:dd:ee:05")
        self.assertEqual(self.Box.search_count([("mac", "=", "aa:bb:cc:dd:ee:05")]), 1)

    def test_identifier_of_one_box_and_mac_of_another(self):
        """The box holding the identifier is the one updated, whatever the
        names and the rows that also match the MAC address."""
        mac = "aa:bb:cc:dd:ee:0b"
        self.Box.create({"name": "aa-box-18", "identifier": mac, "version": "L24.11-18.0#1a2b3c4"})
        self.Box.create({"name": "ab-box-19", "identifier": "SN-000C", "mac": mac, "version": "L24.11-18.0#1a2b3c4"})
        self.check_in(identifier="SN-000A", mac="aa:bb:cc:dd:ee:0a", name="zz-box")
        for version in ("L25.07-19.0#0000001", "L25.07-19.0#0000002"):
            self.check_in(identifier="SN-000A", mac=mac, name="zz-box", version=version)
            box = self.box("SN-000A")
            self.assertEqual((box.version, box.mac), (version, mac))
        self.assertEqual(self.box(mac).version, "L24.11-18.0#1a2b3c4")
        self.assertEqual(self.box("SN-000C").version, "L24.11-18.0#1a2b3c4")
        self.assertEqual(self.Box.search_count([("identifier", "like", "SN-000%")]), 2)

    def test_box_found_by_mac_follows_the_rule(self):
        """Without a box holding the identifier: the box whose identifier is the
        MAC address (the record of a box that used to send it as identifier),
        else the oldest box with that MAC address; never the first by name."""
        mac = "aa:bb:cc:dd:ee:0d"
        Box = self.Box.with_context(active_test=False)
        oldest = self.Box.create({"name": "zz-oldest", "identifier": "SN-OLD-1", "mac": mac})
        newer = self.Box.create({"name": "aa-newer", "identifier": "SN-OLD-2", "mac": mac})
        self.assertEqual(Box._find_box("SN-NEW", mac), oldest)
        self.assertEqual(Box._find_box(mac), oldest, "an 18.0-style request sends the MAC address alone")
        record_18 = self.Box.create({"name": "zz-18.0", "identifier": mac})
        self.assertEqual(Box._find_box("SN-NEW", mac), record_18)
        self.assertEqual(Box._find_box(mac, mac), record_18)
        self.assertEqual(Box._find_box("SN-OLD-2", mac), newer)
        # The check-in renames the box found onto the identifier nobody holds.
        self.check_in(identifier="SN-NEW", mac=mac, version="L25.07-19.0#0000003")
        self.assertEqual(record_18.identifier, "SN-NEW")
        self.assertEqual(record_18.version, "L25.07-19.0#0000003")
        self.assertEqual((oldest.identifier, newer.identifier), ("SN-OLD-1", "SN-OLD-2"))

    def test_identifier_taken_meanwhile_is_retried(self):
        """A box renamed onto an identifier that a concurrent check-in just
        gave to another box: a serialization failure, which Odoo retries,
        never a unique violation, which it would answer with an error."""
        mac = "aa:bb:cc:dd:ee:0e"
        self.check_in(identifier=mac)
        # This transaction's snapshot predates the other box.
        with self.registry.cursor() as cr:
            cr.execute("INSERT INTO iot_box (identifier, name, active) VALUES ('SN-RACE', 'other', true)")
        self.addCleanup(self.delete_committed_box, "SN-RACE")
        with (
            self.assertNoLogs("odoo.sql_db", "ERROR"),
            self.assertRaises(psycopg2.errors.SerializationFailure),
            self.env.cr.savepoint(),
        ):
            self.check_in(identifier="SN-RACE", mac=mac, version="L25.07-19.0#0000004")
        self.assertEqual(self.box(mac).version, "L24.11-18.0#1a2b3c4")

    def delete_committed_box(self, identifier):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM iot_box WHERE identifier = %s", [identifier])

    def test_archived_box_is_refused(self):
        """Archiving a box revokes it: even its own token is refused."""
        self.check_in()
        box = self.box()
        box.action_archive()
        with self.assertLogs(BOX_LOGGER, "WARNING") as logs:
            self.check_in(version="L25.07-18.0#0000009")
        self.assertIn("archived", logs.output[0])
        self.assertFalse(box.active)
        self.assertEqual(box.version, "L24.11-18.0#1a2b3c4")
        box.action_unarchive()
        self.check_in(version="L25.07-18.0#0000009")
        self.assertEqual(box.version, "L25.07-18.0#0000009")


class TestStatus(IotCase):
    def test_status_follows_version(self):
        self.check_in(version="L24.01-18.0#abc1234")
        box = self.box()
        self.assertEqual(box.update_status, "image_required")
        self.assertTrue(box.needs_image_upgrade)
        self.assertIn("24.11", box.update_advice)
        self.check_in(version="L24.11-17.0#abc1234")
        self.assertEqual(box.update_status, "code_pending")
        self.assertFalse(box.needs_image_upgrade)
        self.assertEqual(box.update_advice, "Restart the box to follow 18.0.")
        self.check_in(version="L24.11-18.0#abc1234")
        # No bundle received yet.
        self.assertEqual(box.update_status, "handlers_outdated")

    def test_image_advice_names_minimum_and_latest(self):
        self.check_in(version="L24.01-18.0#abc1234")
        box = self.box()
        self.assertEqual(box.update_advice, "Reflash the SD card with image 24.11 or newer.")
        self.env["iot.image.release"].create({"image_version": "25.07", "is_latest": True})
        self.Box._refresh_all_update_status()
        self.assertTrue(box.image_upgrade_available)
        self.assertEqual(box.update_advice, "Reflash the SD card with image 24.11 or newer (the latest is 25.07).")

    def test_windows_advice(self):
        self.check_in(version="W23.11-17.0-20241105")
        box = self.box()
        self.assertEqual(box.update_status, "code_pending")
        self.assertFalse(box.needs_image_upgrade)
        self.assertEqual(box.update_advice, "Reinstall Windows IoT for 18.0.")

    def test_minimum_image_table_change_updates_statuses(self):
        self.check_in(version="L24.11-18.0#abc1234")
        box = self.box()
        self.assertFalse(box.needs_image_upgrade)
        row = self.env.ref("iot_update.iot_image_requirement_18_0")
        row.min_image = "25.07"
        self.assertTrue(box.needs_image_upgrade)
        self.assertEqual(box.update_status, "image_required")
        row.unlink()  # 18.0 now follows 17.0's row
        self.assertFalse(box.needs_image_upgrade)

    def test_offline_after_delay(self):
        with freeze_time("2026-01-01 10:00:00"):
            self.check_in()
        box = self.box()
        # The default delay: 3 hours.
        with freeze_time("2026-01-01 12:59:00"):
            self.Box._cron_refresh_update_status()
            self.assertFalse(box.is_offline)
        with freeze_time("2026-01-01 13:01:00"):
            self.Box._cron_refresh_update_status()
            self.assertTrue(box.is_offline)
            self.assertEqual(box.update_status, "offline")
            self.check_in()
            self.assertFalse(box.is_offline)
        self.env["ir.config_parameter"].set_param("iot_update.offline_delay_hours", "1")
        with freeze_time("2026-01-01 14:02:00"):
            self.Box._cron_refresh_update_status()
            self.assertTrue(box.is_offline)

    def test_server_series_change_recomputes(self):
        self.check_in(version="L25.07-18.0#abc1234")
        box = self.box()
        self.assertFalse(box.code_update_pending)
        with patch.object(type(self.Box), "_get_server_series", lambda self: "saas~18.4"):
            self.Box._cron_refresh_update_status()
            self.assertTrue(box.code_update_pending)
            self.assertEqual(box.update_advice, "Restart the box to follow saas~18.4.")

    def test_invalid_requirement_rows_refused(self):
        Requirement = self.env["iot.image.requirement"]
        for vals in (
            {"server_series": "eighteen", "min_image": "24.11"},
            {"server_series": "20.0", "min_image": "24.13"},
        ):
            with self.subTest(vals=vals), self.assertRaises(ValidationError):
                Requirement.create(vals)

    def test_stale_offline_flag_cleared_by_cron(self):
        with freeze_time("2026-01-01 10:00:00"):
            self.check_in()
        box = self.box()
        self.assertEqual(box.last_contact, fields.Datetime.to_datetime("2026-01-01 10:00:00"))
        box.is_offline = True
        box.flush_recordset()
        # An hour later (within the offline delay): the flag is stale, the contact stays what it was.
        with freeze_time("2026-01-01 11:00:00"):
            self.Box._cron_refresh_update_status()
        box.invalidate_recordset()
        self.assertFalse(box.is_offline)
        self.assertEqual(box.last_contact, fields.Datetime.to_datetime("2026-01-01 10:00:00"))
