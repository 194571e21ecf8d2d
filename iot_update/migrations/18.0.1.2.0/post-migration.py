# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Drivers bundles become records.

The bundles of a database upgraded from an earlier version are recorded when
the registry loads after the upgrade (``_register_hook``, with every module
loaded): forgetting the folders' fingerprint makes it build and record them.
The bundle each variant's boxes hold now becomes the current record of that
variant; boxes holding an older bundle, which no record describes, show
"older bundle (unknown)".
"""

from odoo import SUPERUSER_ID, api

from odoo.addons.iot_update.models.iot_handlers_bundle import FINGERPRINT_PARAM


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["ir.config_parameter"].search([("key", "=", FINGERPRINT_PARAM)]).unlink()
