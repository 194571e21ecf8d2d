# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The administrator interface: views, dashboard filters and groups, settings."""

from datetime import timedelta

from lxml import etree

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.tests import new_test_user
from odoo.tools.safe_eval import safe_eval

from .iot_common import IotCase
from .iot_fleet import fleet_patchers, make_fleet

MODELS = (
    "iot.box",
    "iot.device",
    "iot.box.event",
    "iot.image.requirement",
    "iot.image.release",
    "iot.handlers.bundle",
    "iot.handlers.bundle.log",
    "iot.box.log",
    "iot.rollout.line",
)


class TestViewsLoad(IotCase):
    def test_every_view_of_the_module_loads(self):
        views = self.env["ir.ui.view"].browse(
            self.env["ir.model.data"]
            .search([("module", "=", "iot_update"), ("model", "=", "ir.ui.view")])
            .mapped("res_id")
        )
        self.assertEqual(set(views.mapped("model")), {*MODELS, "iot.update.settings", "res.config.settings"})
        for view in views:
            with self.subTest(view=view.name):
                root = view.inherit_id or view
                result = self.env[view.model].get_views([(root.id, root.type)])
                arch = result["views"][root.type]["arch"]
                etree.fromstring(arch)
                if view.inherit_id and view.model == "res.config.settings":
                    self.assertIn("iot_offline_delay_hours", arch)

    def test_actions_open_their_views(self):
        for xmlid in (
            "iot_update.iot_box_action",
            "iot_update.iot_device_action",
            "iot_update.iot_box_event_action",
            "iot_update.iot_handlers_bundle_action",
            "iot_update.iot_handlers_bundle_log_action",
            "iot_update.iot_box_log_action",
            "iot_update.iot_image_requirement_action",
            "iot_update.iot_image_release_action",
            "iot_update.res_config_settings_action",
            "iot_update.iot_update_settings_action",
        ):
            action = self.env.ref(xmlid)
            modes = action.view_mode.split(",")
            with self.subTest(action=xmlid):
                result = self.env[action.res_model].get_views([(False, mode) for mode in modes] + [(False, "search")])
                self.assertEqual(set(result["views"]), {*modes, "search"})

    def test_history_shows_the_bundle_and_keeps_the_digest_for_developer_mode(self):
        user = new_test_user(self.env, "history_viewer", groups="base.group_user,iot_update.group_iot_user")

        def shown(user, model, view_type):
            arch = self.env[model].with_user(user).get_views([(False, view_type)])["views"][view_type]["arch"]
            root = etree.fromstring(arch)
            if model == "iot.box":
                root = root.find(".//field[@name='event_ids']")
            return {field.get("name") for field in root.iter("field")}

        views = {
            ("iot.box.event", "list"): "iot_update.iot_box_event_view_list",
            ("iot.box.event", "form"): "iot_update.iot_box_event_view_form",
            ("iot.box", "form"): "iot_update.iot_box_view_form",
        }
        for (model, view_type), xmlid in views.items():
            with self.subTest(model=model, view_type=view_type):
                self.assertIn("bundle_id", shown(user, model, view_type))
                self.assertNotIn("bundle_digest", shown(user, model, view_type))
                # Kept for developer mode (base.group_no_one, which only a debug session has).
                digests = etree.fromstring(self.env.ref(xmlid).arch).xpath("//field[@name='bundle_digest']")
                self.assertEqual([field.get("groups") for field in digests], ["base.group_no_one"])

    def test_dashboard_is_the_default_view_of_boxes(self):
        action = self.env.ref("iot_update.iot_box_action")
        self.assertEqual(action.view_mode.split(",")[0], "kanban")
        self.assertEqual(action.view_mode.split(","), ["kanban", "list", "form", "graph", "pivot"])
        kanban = etree.fromstring(self.Box.get_views([(False, "kanban")])["views"]["kanban"]["arch"])
        self.assertEqual(kanban.get("default_group_by"), "update_status")
        self.assertEqual(kanban.get("highlight_color"), "status_color")
        self.assertEqual(kanban.find("progressbar").get("field"), "update_status")
        card_fields = {node.get("name") for node in kanban.iter("field")}
        self.assertLessEqual(
            {"name", "identifier", "image_version", "code_version", "last_seen", "update_advice", "update_status"},
            card_fields,
        )

    def test_boxes_are_not_created_by_hand(self):
        for view_type in ("kanban", "list", "form"):
            arch = etree.fromstring(self.Box.get_views([(False, view_type)])["views"][view_type]["arch"])
            with self.subTest(view_type=view_type):
                self.assertIn(arch.get("create"), ("0", "false", "False"))

    def test_box_views_load_for_an_iot_user(self):
        user = new_test_user(self.env, "iot_view_user", groups="base.group_user,iot_update.group_iot_user")
        result = (
            self.env["iot.box"]
            .with_user(user)
            .get_views([(False, mode) for mode in ("kanban", "list", "form", "graph", "pivot", "search")])
        )
        form = result["views"]["form"]["arch"]
        self.assertIn('name="drivers_auto_update"', form)
        self.assertIn('name="event_ids"', form)
        self.assertNotIn("token_hash", form)


class TestDashboard(IotCase):
    def setUp(self):
        super().setUp()
        for patcher in fleet_patchers():
            self.startPatcher(patcher)
        self.fleet = make_fleet(self)
        self.fleet_ids = [box.id for box in self.fleet.values()]
        self.search_arch = etree.fromstring(self.Box.get_views([(False, "search")])["views"]["search"]["arch"])

    def names(self, domain):
        return set(self.Box.search([("id", "in", self.fleet_ids), *domain]).mapped("name"))

    def filter_domain(self, name):
        (node,) = self.search_arch.xpath(f"//filter[@name='{name}']")
        return safe_eval(node.get("domain"))

    def test_fleet_covers_every_status(self):
        self.assertEqual(
            {name: box.update_status for name, box in self.fleet.items()},
            {
                "fleet-offline": "offline",
                "fleet-old-image": "image_required",
                "fleet-old-code": "code_pending",
                "fleet-windows-old-code": "code_pending",
                "fleet-no-handlers": "handlers_outdated",
                "fleet-up-to-date": "up_to_date",
                "fleet-newest": "up_to_date",
            },
        )

    def test_filters_return_the_right_boxes(self):
        expected = {
            "needs_image_upgrade": {"fleet-old-image"},
            # Linux boxes older than the newest image (25.07), whatever else they need.
            "image_upgrade_available": {
                "fleet-offline",
                "fleet-old-image",
                "fleet-old-code",
                "fleet-no-handlers",
                "fleet-up-to-date",
            },
            "code_update_pending": {"fleet-old-code", "fleet-windows-old-code"},
            "handlers_outdated": {"fleet-no-handlers"},
            "offline": {"fleet-offline"},
            "up_to_date": {"fleet-up-to-date", "fleet-newest"},
        }
        self.assertEqual(
            {node.get("name") for node in self.search_arch.xpath("//filter[@domain]")} & set(expected),
            set(expected),
        )
        for name, boxes in expected.items():
            with self.subTest(filter=name):
                self.assertEqual(self.names(self.filter_domain(name)), boxes)

    def test_filter_labels(self):
        labels = {node.get("name"): node.get("string") for node in self.search_arch.iter("filter")}
        self.assertEqual(labels["needs_image_upgrade"], "Needs image upgrade")
        self.assertEqual(labels["image_upgrade_available"], "Image upgrade available")
        self.assertEqual(labels["code_update_pending"], "Code update pending")
        self.assertEqual(labels["handlers_outdated"], "Handlers outdated")
        self.assertEqual(labels["offline"], "Offline")
        self.assertEqual(labels["up_to_date"], "Up to date")

    def test_pinned_drivers_filter(self):
        self.fleet["fleet-newest"].drivers_auto_update = False
        self.assertEqual(self.names(self.filter_domain("drivers_pinned")), {"fleet-newest"})

    def test_search_by_name_identifier_or_ip(self):
        (node,) = self.search_arch.xpath("//field[@name='name']")
        self.fleet["fleet-newest"].ip = "10-0-0-7.abcd.odoo-iot.com"
        for text, expected in (
            ("old-code", {"fleet-old-code", "fleet-windows-old-code"}),
            ("aa:bb:cc:00:00:03", {"fleet-old-code"}),
            ("10-0-0-7", {"fleet-newest"}),
        ):
            with self.subTest(text=text):
                self.assertEqual(self.names(safe_eval(node.get("filter_domain"), {"self": text})), expected)
        for name in ("identifier", "ip"):
            self.assertTrue(self.search_arch.xpath(f"//field[@name='{name}']"))

    def test_columns_worst_first_with_counts(self):
        """What the kanban asks for its columns: every status, worst first, counted."""
        groups = self.Box.web_read_group([("id", "in", self.fleet_ids)], ["update_status"], ["update_status"])
        self.assertEqual(
            [(group["update_status"], group["update_status_count"]) for group in groups["groups"]],
            [("offline", 1), ("image_required", 1), ("code_pending", 2), ("handlers_outdated", 1), ("up_to_date", 2)],
        )
        # Columns stay even when empty, so the count per status is always visible.
        groups = self.Box.web_read_group(
            [("id", "=", self.fleet["fleet-newest"].id)], ["update_status"], ["update_status"]
        )
        self.assertEqual(len(groups["groups"]), 5)

    def test_group_bys(self):
        # A user of several companies (Odoo gives them the multi-company group) also groups by company.
        other = self.env["res.company"].create({"name": "IoT Other Company"})
        user = new_test_user(
            self.env,
            "iot_multi_company",
            groups="base.group_user,iot_update.group_iot_user",
            company_ids=[Command.set([self.env.company.id, other.id])],
        )
        arch = self.Box.with_user(user).get_views([(False, "search")])["views"]["search"]["arch"]
        group_bys = {
            node.get("name"): safe_eval(node.get("context"))["group_by"]
            for node in etree.fromstring(arch).xpath("//filter[@context]")
        }
        self.assertEqual(
            group_bys,
            {
                "group_update_status": "update_status",
                "group_image_version": "image_version",
                "group_code_version": "code_version",
                "group_platform": "platform",
                "group_company": "company_id",
            },
        )
        by_series = dict(self.Box._read_group([("id", "in", self.fleet_ids)], ["code_version"], ["__count"]))
        self.assertEqual(by_series, {"17.0": 2, "18.0": 5})
        by_platform = dict(self.Box._read_group([("id", "in", self.fleet_ids)], ["platform"], ["__count"]))
        self.assertEqual(by_platform, {"linux": 6, "windows": 1})

    def test_card_colour_follows_status(self):
        colours = {box.update_status: box.status_color for box in self.fleet.values()}
        self.assertEqual(len(set(colours.values())), 5)
        self.assertEqual(colours["up_to_date"], 10)  # green
        self.assertEqual(colours["image_required"], 1)  # red

    def test_minimum_image_table_change_shows_in_filters(self):
        """Editing a row of the minimum image table (its editable list) moves boxes between filters."""
        needs_upgrade = self.filter_domain("needs_image_upgrade")
        row = self.env.ref("iot_update.iot_image_requirement_18_0")
        row.min_image = "25.01"
        self.assertEqual(
            self.names(needs_upgrade),
            {"fleet-offline", "fleet-old-image", "fleet-old-code", "fleet-no-handlers", "fleet-up-to-date"},
        )
        self.assertEqual(self.names(self.filter_domain("up_to_date")), {"fleet-newest"})
        row.min_image = "23.01"
        self.assertEqual(self.names(needs_upgrade), set())

    def test_offline_delay_setting_updates_statuses(self):
        box = self.fleet["fleet-up-to-date"]
        box.last_contact = fields.Datetime.now() - timedelta(hours=2)
        box.flush_recordset()
        self.assertEqual(box.update_status, "up_to_date")
        settings = self.env["res.config.settings"].create({"iot_offline_delay_hours": 1})
        settings.execute()
        self.assertEqual(self.env["ir.config_parameter"].get_param("iot_update.offline_delay_hours"), "1")
        self.assertEqual(box.update_status, "offline")
        self.assertIn(box.name, self.names(self.filter_domain("offline")))
        self.env["res.config.settings"].create({"iot_offline_delay_hours": 6}).execute()
        self.assertEqual(box.update_status, "up_to_date")
        self.assertEqual(self.names(self.filter_domain("offline")), {"fleet-offline"})


class TestBoxForm(IotCase):
    def test_homepage_link_follows_database_url(self):
        self.check_in(ip="192.168.1.20")
        box = self.box()
        params = self.env["ir.config_parameter"]
        params.set_param("web.base.url", "http://odoo.example.com:8069")
        box.invalidate_recordset(["homepage_url"])
        self.assertEqual(box.homepage_url, "http://192.168.1.20:8069")
        params.set_param("web.base.url", "https://odoo.example.com")
        box.invalidate_recordset(["homepage_url"])
        self.assertEqual(box.homepage_url, "https://192.168.1.20")
        self.check_in(ip="192-168-1-20.abcd.odoo-iot.com")
        self.assertEqual(box.homepage_url, "https://192-168-1-20.abcd.odoo-iot.com")

    def test_history_tab_lists_the_box_events(self):
        self.check_in()
        self.check_in(identifier="aa:bb:cc:dd:ee:02")
        box, other = self.box(), self.box("aa:bb:cc:dd:ee:02")
        Event = self.env["iot.box.event"]
        check_ins = box.event_ids
        self.assertEqual(check_ins.mapped("kind"), ["admission"])
        mine = Event.create([{"box_id": box.id, "kind": "checkin"}, {"box_id": box.id, "kind": "delivery"}])
        Event.create({"box_id": other.id, "kind": "checkin"})
        self.assertEqual(box.event_ids, check_ins | mine)
        box.unlink()
        self.assertFalse((check_ins | mine).exists())


class TestSettings(IotCase):
    def test_settings_show_the_current_parameters(self):
        params = self.env["ir.config_parameter"]
        params.set_param("iot_update.image_feed_url", "http://127.0.0.1:9/images.txt")
        params.set_param("iot_update.event_retention_days", "30")
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.iot_pairing_token, self.token)
        self.assertEqual(settings.iot_offline_delay_hours, 3)
        self.assertEqual(settings.iot_image_feed_url, "http://127.0.0.1:9/images.txt")
        self.assertEqual(settings.iot_event_retention_days, 30)
        self.env["res.config.settings"].create(
            {"iot_image_feed_url": " http://127.0.0.1:9/other.txt ", "iot_event_retention_days": 7}
        ).execute()
        self.assertEqual(params.get_param("iot_update.image_feed_url"), "http://127.0.0.1:9/other.txt")
        self.assertEqual(params.get_param("iot_update.event_retention_days"), "7")

    def test_settings_form_opens_with_the_token(self):
        """The settings form starts from a new record: the token must be in its initial values."""
        spec = {"iot_pairing_token": {}, "iot_offline_delay_hours": {}, "iot_event_retention_days": {}}
        admin = self.env.ref("base.user_admin")
        values = self.env["res.config.settings"].with_user(admin).onchange({}, [], spec)["value"]
        self.assertEqual(values["iot_pairing_token"], self.token)
        self.assertEqual(values["iot_offline_delay_hours"], 3)
        self.assertEqual(values["iot_event_retention_days"], 90)

    def test_generate_pairing_token(self):
        settings = self.env["res.config.settings"].create({})
        settings.action_iot_generate_pairing_token()
        new_token = self.Box._get_pairing_token()
        self.assertNotEqual(new_token, self.token)
        self.assertGreaterEqual(len(new_token), 20)
        settings.invalidate_recordset()
        self.assertEqual(settings.iot_pairing_token, new_token)
        # Saving settings opened before the new token never brings the old one back.
        self.env["res.config.settings"].create({"iot_pairing_token": self.token}).execute()
        self.assertEqual(self.Box._get_pairing_token(), new_token)

    def test_delays_must_be_positive(self):
        for vals in ({"iot_offline_delay_hours": 0}, {"iot_event_retention_days": -1}):
            with self.subTest(vals=vals), self.assertRaises(ValidationError):
                self.env["res.config.settings"].create(vals)

    def test_unchanged_delay_does_not_recompute(self):
        box = self.stale_offline_box()  # an unchanged delay must refresh nothing
        self.env["res.config.settings"].create({"iot_image_feed_url": "http://127.0.0.1:9/x"}).execute()
        self.assertEqual(box.update_status, "up_to_date")
        self.env["res.config.settings"].create({"iot_offline_delay_hours": 48}).execute()
        self.assertEqual(box.update_status, "offline")
