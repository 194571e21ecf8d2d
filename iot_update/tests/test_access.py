# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Who may see and change what: IoT user, IoT administrator, companies."""

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import new_test_user

from .iot_common import PRINTER, IotCase

IOT_MODELS = ("iot.box", "iot.device", "iot.box.event", "iot.image.requirement", "iot.image.release")
#: Written by the server only (IoT administrators release and roll back through
#: methods; box log lines come from the boxes).
BUNDLE_MODELS = (
    "iot.box.log",
    "iot.handlers.bundle",
    "iot.handlers.bundle.file",
    "iot.handlers.bundle.change",
    "iot.handlers.bundle.log",
    "iot.rollout.wave",
    "iot.rollout.line",
)


class TestAccess(IotCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.iot_user = new_test_user(cls.env, "iot_user", groups="base.group_user,iot_update.group_iot_user")
        cls.iot_admin = new_test_user(cls.env, "iot_admin", groups="base.group_user,iot_update.group_iot_admin")
        cls.employee = new_test_user(cls.env, "iot_employee", groups="base.group_user")
        cls.settings_admin = new_test_user(cls.env, "iot_settings_admin", groups="base.group_system")

    def setUp(self):
        super().setUp()
        self.check_in(devices={"usb_printer": PRINTER})
        self.box_record = self.box()
        self.event = self.env["iot.box.event"].create({"box_id": self.box_record.id, "kind": "checkin"})

    def test_groups(self):
        admin_group = self.env.ref("iot_update.group_iot_admin")
        self.assertIn(self.env.ref("iot_update.group_iot_user"), admin_group.implied_ids)
        self.assertTrue(self.env.ref("base.user_admin").has_group("iot_update.group_iot_admin"))
        self.assertTrue(self.iot_admin.has_group("iot_update.group_iot_user"))

    def test_every_model_has_access_rules_for_both_groups(self):
        models = self.env["ir.model"].search([("model", "in", IOT_MODELS + BUNDLE_MODELS)])
        self.assertEqual(len(models), len(IOT_MODELS + BUNDLE_MODELS))
        # The IoT settings screen is for IoT administrators only.
        expected = {
            "iot_update.group_iot_user": {*IOT_MODELS, *BUNDLE_MODELS},
            "iot_update.group_iot_admin": {*IOT_MODELS, *BUNDLE_MODELS, "iot.update.settings"},
        }
        for group, group_models in expected.items():
            rules = self.env["ir.model.access"].search([("group_id", "=", self.env.ref(group).id)])
            self.assertEqual(set(rules.mapped("model_id.model")), group_models, group)
            self.assertTrue(all(rules.mapped("perm_read")), group)
            bundle_rules = rules.filtered(lambda rule: rule.model_id.model in BUNDLE_MODELS)
            self.assertFalse(
                any(bundle_rules.mapped(lambda rule: rule.perm_write or rule.perm_create or rule.perm_unlink)), group
            )

    def test_iot_user_reads_everything_and_changes_nothing(self):
        box = self.box_record.with_user(self.iot_user)
        self.assertEqual(box.name, "iotbox-01")
        self.assertEqual(box.device_ids.mapped("identifier"), ["usb_printer"])
        self.assertIn(self.event, box.event_ids)
        self.assertTrue(box.update_advice)
        self.env["iot.image.release"].create({"image_version": "25.07", "is_latest": True})
        for model in IOT_MODELS:
            with self.subTest(model=model):
                # Reads everything of its company (no rule hides anything in this
                # single-company set) except refusals of unknown boxes.
                domain = [("box_id", "!=", False)] if model == "iot.box.event" else []
                everything = self.env[model].sudo().search(domain)
                self.assertTrue(everything)
                self.assertEqual(self.env[model].with_user(self.iot_user).search([]), everything)
        with self.assertRaises(AccessError):
            box.drivers_auto_update = False
        with self.assertRaises(AccessError):
            box.write({"name": "renamed"})
        with self.assertRaises(AccessError):
            box.device_ids.write({"name": "renamed"})
        with self.assertRaises(AccessError):
            self.env.ref("iot_update.iot_image_requirement_18_0").with_user(self.iot_user).min_image = "25.07"
        with self.assertRaises(AccessError):
            self.env["iot.image.requirement"].with_user(self.iot_user).create(
                {"server_series": "20.0", "min_image": "26.01"}
            )
        with self.assertRaises(AccessError):
            self.event.with_user(self.iot_user).unlink()
        self.assertTrue(self.box_record.drivers_auto_update)

    def test_iot_user_cannot_change_settings(self):
        Settings = self.env["res.config.settings"].with_user(self.iot_user)
        with self.assertRaises(AccessError):
            Settings.create({"iot_offline_delay_hours": 2}).execute()
        with self.assertRaises(AccessError):
            Settings.create({}).action_iot_generate_pairing_token()
        IotSettings = self.env["iot.update.settings"].with_user(self.iot_user)
        with self.assertRaises(AccessError):
            IotSettings.create({"offline_delay_hours": 2})
        with self.assertRaises(AccessError):
            IotSettings.action_generate_pairing_token()
        params = self.env["ir.config_parameter"]
        self.assertEqual(params.get_param("iot_update.offline_delay_hours"), "3")
        self.assertEqual(self.Box._get_pairing_token(), self.token)

    def test_other_employees_see_no_box(self):
        for model in IOT_MODELS:
            with self.subTest(model=model), self.assertRaises(AccessError):
                self.env[model].with_user(self.employee).search([])

    def test_iot_admin_toggles_and_edits(self):
        box = self.box_record.with_user(self.iot_admin)
        box.drivers_auto_update = False
        box.name = "shop counter"
        box.flush_recordset()
        self.assertFalse(self.box_record.drivers_auto_update)
        self.assertEqual(self.box_record.name, "shop counter")
        Requirement = self.env["iot.image.requirement"].with_user(self.iot_admin)
        row = Requirement.create({"server_series": "20.0", "min_image": "26.01"})
        row.min_image = "26.07"
        row.unlink()
        self.env.ref("iot_update.iot_image_requirement_18_0").with_user(self.iot_admin).min_image = "25.07"
        self.assertEqual(self.box_record.update_status, "image_required")

    def test_boxes_are_created_by_check_in_only(self):
        for user in (self.iot_user, self.iot_admin):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.env["iot.box"].with_user(user).create({"name": "by hand", "identifier": "11:22:33:44:55:66"})
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.env["iot.device"].with_user(user).create({"box_id": self.box_record.id, "identifier": "by hand"})

    def test_general_settings_need_settings_administrators_iot_settings_do_not(self):
        # The admin user is both: sees the token, saves settings, generates a token.
        admin = self.env.ref("base.user_admin")
        settings = self.env["res.config.settings"].with_user(admin).create({"iot_offline_delay_hours": 12})
        self.assertEqual(settings.iot_pairing_token, self.token)
        settings.execute()
        self.assertEqual(self.env["ir.config_parameter"].get_param("iot_update.offline_delay_hours"), "12")
        settings.action_iot_generate_pairing_token()
        new_token = self.Box._get_pairing_token()
        self.assertNotEqual(new_token, self.token)
        # An IoT administrator without the Settings rights cannot open the general settings...
        self.assertFalse(self.iot_admin.has_group("base.group_system"))
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.iot_admin).create({})
        # ... but changes the IoT settings and the token from IoT > Configuration > Settings.
        iot_settings = self.env["iot.update.settings"].with_user(self.iot_admin).create({"offline_delay_hours": 8})
        self.assertEqual(iot_settings.pairing_token, new_token)
        iot_settings.action_save()
        self.assertEqual(self.env["ir.config_parameter"].get_param("iot_update.offline_delay_hours"), "8")
        iot_settings.action_generate_pairing_token()
        newer_token = self.Box._get_pairing_token()
        self.assertNotIn(newer_token, (self.token, new_token))
        # A Settings administrator outside the IoT administrators neither sees nor replaces the token,
        # and has no IoT settings screen.
        settings = self.env["res.config.settings"].with_user(self.settings_admin).create({})
        with self.assertRaises(AccessError):
            settings.read(["iot_pairing_token"])
        with self.assertRaises(AccessError):
            settings.action_iot_generate_pairing_token()
        with self.assertRaises(AccessError):
            self.env["iot.update.settings"].with_user(self.settings_admin).create({})
        self.assertEqual(self.Box._get_pairing_token(), newer_token)


class TestMultiCompany(IotCase):
    def setUp(self):
        super().setUp()
        Company = self.env["res.company"]
        self.company_a = Company.create({"name": "IoT Company A"})
        self.company_b = Company.create({"name": "IoT Company B"})
        boxes = {}
        for suffix, company in (("0a", self.company_a), ("0b", self.company_b), ("00", False)):
            identifier = f"aa:bb:cc:dd:ee:{suffix}"
            self.check_in(identifier=identifier, devices={f"printer_{suffix}": PRINTER})
            box = self.box(identifier)
            box.company_id = company
            self.env["iot.box.event"].create({"box_id": box.id, "kind": "checkin"})
            boxes[suffix] = box
        self.boxes = boxes
        self.user_a = new_test_user(
            self.env,
            "iot_user_a",
            groups="base.group_user,iot_update.group_iot_admin",
            company_id=self.company_a.id,
            company_ids=[Command.set([self.company_a.id])],
        )

    def test_user_sees_own_company_and_shared_boxes(self):
        Box = self.env["iot.box"].with_user(self.user_a)
        mine = self.boxes["0a"] | self.boxes["00"]
        self.assertEqual(Box.search([("identifier", "like", "aa:bb:cc:dd:ee:0")]), mine)
        devices = self.env["iot.device"].with_user(self.user_a).search([("identifier", "like", "printer_")])
        self.assertEqual(devices.box_id, mine)
        events = self.env["iot.box.event"].with_user(self.user_a).search([])
        self.assertEqual(events.box_id, mine)
        with self.assertRaises(AccessError):
            Box.browse(self.boxes["0b"].id).name  # noqa: B018
        with self.assertRaises(AccessError):
            Box.browse(self.boxes["0b"].id).drivers_auto_update = False
        Box.browse(self.boxes["00"].id).drivers_auto_update = False
        self.assertFalse(self.boxes["00"].drivers_auto_update)

    def test_dashboard_counts_only_visible_boxes(self):
        groups = (
            self.env["iot.box"]
            .with_user(self.user_a)
            .web_read_group([], ["update_status"], ["update_status"])["groups"]
        )
        self.assertEqual(sum(group["update_status_count"] for group in groups), 2)
