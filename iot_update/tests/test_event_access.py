# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Who sees the history of refused strangers."""

from odoo.tests import new_test_user

from .iot_common import BOX_LOGGER, IotCase


class TestEventAccess(IotCase):
    def test_refusals_of_unknown_boxes_are_for_administrators(self):
        self.check_in()
        with self.assertLogs(BOX_LOGGER, "WARNING"):
            self.check_in(identifier="aa:bb:cc:dd:ee:66", token="guess")
        iot_user = new_test_user(self.env, "iot_history_user", groups="base.group_user,iot_update.group_iot_user")
        iot_admin = new_test_user(self.env, "iot_history_admin", groups="base.group_user,iot_update.group_iot_admin")
        Event = self.env["iot.box.event"]
        stranger = Event.search([("identifier", "=", "aa:bb:cc:dd:ee:66")])
        self.assertEqual(stranger.mapped("kind"), ["refusal"])
        self.assertFalse(stranger.box_id)
        own = Event.search([("box_id", "=", self.box().id)])
        self.assertTrue(own)
        self.assertEqual(Event.with_user(iot_user).search([]), own)
        self.assertEqual(Event.with_user(iot_admin).search([]), own | stranger)
