# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""IoT > Configuration > Settings: the IoT settings screen of IoT administrators."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user

from .iot_common import IotCase

FORM_SPEC = {"pairing_token": {}, "offline_delay_hours": {}, "image_feed_url": {}, "event_retention_days": {}}


class TestIotSettings(IotCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.iot_admin = new_test_user(
            cls.env, "iot_settings_iot_admin", groups="base.group_user,iot_update.group_iot_admin"
        )
        cls.iot_user = new_test_user(
            cls.env, "iot_settings_iot_user", groups="base.group_user,iot_update.group_iot_user"
        )
        cls.params = cls.env["ir.config_parameter"]

    def as_admin(self):
        return self.env["iot.update.settings"].with_user(self.iot_admin)

    def test_iot_administrator_opens_the_screen_from_the_menu(self):
        self.assertFalse(self.iot_admin.has_group("base.group_system"))
        menu = self.env.ref("iot_update.iot_update_menu_settings")
        self.assertEqual(menu.action, self.env.ref("iot_update.iot_update_settings_action"))
        self.assertIn(menu.id, self.env["ir.ui.menu"].with_user(self.iot_admin)._visible_menu_ids())
        self.assertNotIn(menu.id, self.env["ir.ui.menu"].with_user(self.iot_user)._visible_menu_ids())
        self.params.set_param("iot_update.image_feed_url", "http://127.0.0.1:9/images.txt")
        self.params.set_param("iot_update.event_retention_days", "30")
        # The form opens on a new record: its initial values are the current parameters.
        values = self.as_admin().onchange({}, [], FORM_SPEC)["value"]
        self.assertEqual(
            values,
            {
                "pairing_token": self.token,
                "offline_delay_hours": 3,
                "image_feed_url": "http://127.0.0.1:9/images.txt",
                "event_retention_days": 30,
            },
        )

    def test_offline_delay_refreshes_the_statuses(self):
        self.check_in()
        box = self.box()
        box.last_contact = fields.Datetime.now() - timedelta(hours=2)
        box.flush_recordset()
        self.assertFalse(box.is_offline)
        action = self.as_admin().create({"offline_delay_hours": 1}).action_save()
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(self.params.get_param("iot_update.offline_delay_hours"), "1")
        self.assertTrue(box.is_offline)
        self.assertEqual(box.update_status, "offline")
        self.as_admin().create({"offline_delay_hours": 6}).action_save()
        self.assertEqual(self.params.get_param("iot_update.offline_delay_hours"), "6")
        self.assertFalse(box.is_offline)
        self.assertNotEqual(box.update_status, "offline")

    def test_feed_url_and_retention(self):
        box = self.stale_offline_box()  # an unchanged delay must refresh nothing
        self.as_admin().create(
            {"image_feed_url": " http://127.0.0.1:9/images.txt ", "event_retention_days": 7}
        ).action_save()
        self.assertEqual(self.params.get_param("iot_update.image_feed_url"), "http://127.0.0.1:9/images.txt")
        self.assertEqual(self.params.get_param("iot_update.event_retention_days"), "7")
        self.assertEqual(self.env["iot.box.event"]._get_retention_days(), 7)
        self.assertEqual(box.update_status, "up_to_date")
        # Emptied: the parameter goes, the feed reads the default list.
        self.as_admin().create({"image_feed_url": ""}).action_save()
        self.assertFalse(self.params.get_param("iot_update.image_feed_url"))
        self.assertEqual(self.params.get_param("iot_update.event_retention_days"), "7")

    def test_generate_pairing_token(self):
        settings = self.as_admin().create({})
        self.assertEqual(settings.pairing_token, self.token)
        self.assertTrue(settings.action_generate_pairing_token())
        new_token = self.Box._get_pairing_token()
        self.assertNotEqual(new_token, self.token)
        self.assertGreaterEqual(len(new_token), 20)
        settings.invalidate_recordset()
        self.assertEqual(settings.pairing_token, new_token)
        # Saving the form opened before the new token never brings the old one back.
        settings.action_save()
        self.assertEqual(self.Box._get_pairing_token(), new_token)

    def test_iot_user_cannot_read_or_change_the_settings(self):
        settings = self.as_admin().create({"offline_delay_hours": 3})
        for user in (self.iot_user, new_test_user(self.env, "iot_settings_employee", groups="base.group_user")):
            Settings = self.env["iot.update.settings"].with_user(user)
            with self.subTest(user=user.login):
                for spec in (FORM_SPEC, {"offline_delay_hours": {}, "image_feed_url": {}}):
                    with self.assertRaises(AccessError):
                        Settings.onchange({}, [], spec)
                with self.assertRaises(AccessError):
                    Settings.create({"offline_delay_hours": 2})
                with self.assertRaises(AccessError):
                    settings.with_user(user).action_save()
                with self.assertRaises(AccessError):
                    Settings.action_generate_pairing_token()
                with self.assertRaises(AccessError):
                    settings.with_user(user).read(["pairing_token"])
        self.assertEqual(self.params.get_param("iot_update.offline_delay_hours"), "3")
        self.assertEqual(self.Box._get_pairing_token(), self.token)

    def test_form_save_icon_applies_too(self):
        settings = self.as_admin().create({})
        settings.write({"offline_delay_hours": 5})  # the form's own save, no button
        self.assertEqual(self.params.get_param("iot_update.offline_delay_hours"), "5")

    def test_delays_must_be_positive(self):
        keys = ("iot_update.offline_delay_hours", "iot_update.image_feed_url", "iot_update.event_retention_days")
        settings = self.as_admin().create({})  # saving the form as shown stores what it shows
        before = {key: self.params.get_param(key) for key in keys}
        self.assertEqual(before, dict(zip(keys, ("3", False, "90"), strict=True)))
        for vals in ({"offline_delay_hours": 0}, {"offline_delay_hours": -3}, {"event_retention_days": 0}):
            with self.subTest(vals=vals), self.assertRaises(ValidationError):
                self.as_admin().create(vals)
        with self.assertRaises(ValidationError):
            settings.write({"event_retention_days": -1})
        with self.assertRaises(ValidationError):
            self.env["iot.update.settings"]._apply_iot_settings(0, "", 90)
        with self.assertRaises(ValidationError):
            self.env["iot.update.settings"]._apply_iot_settings(24, "", 0)
        self.assertEqual({key: self.params.get_param(key) for key in keys}, before)

    def test_general_settings_show_and_save_the_same_values(self):
        self.as_admin().create({"offline_delay_hours": 12, "event_retention_days": 40}).action_save()
        general = self.env["res.config.settings"].create({})
        self.assertEqual(general.iot_offline_delay_hours, 12)
        self.assertEqual(general.iot_event_retention_days, 40)
        self.env["res.config.settings"].create({"iot_offline_delay_hours": 36}).execute()
        self.assertEqual(self.as_admin().create({}).offline_delay_hours, 36)
        self.assertEqual(self.params.get_param("iot_update.event_retention_days"), "40")

    def test_hold_new_driver_bundles_from_both_screens(self):
        key = "iot_update.hold_bundles"
        self.assertFalse(self.as_admin().onchange({}, [], {"hold_bundles": {}})["value"]["hold_bundles"])
        self.as_admin().create({"hold_bundles": True}).action_save()
        self.assertEqual(self.params.get_param(key), "True")
        self.assertTrue(self.as_admin().onchange({}, [], {"hold_bundles": {}})["value"]["hold_bundles"])
        system_admin = new_test_user(
            self.env, "iot_settings_system", groups="base.group_system,iot_update.group_iot_admin"
        )
        Settings = self.env["res.config.settings"].with_user(system_admin)
        self.assertTrue(Settings.default_get(["iot_hold_bundles"])["iot_hold_bundles"])
        Settings.create({"iot_hold_bundles": False}).execute()
        self.assertFalse(self.params.get_param(key))
