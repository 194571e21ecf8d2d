# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Offline delay: 24 h was the default before bus subscriptions counted as contact.

Boxes that are on now renew their bus subscription at least every ~1.5 h, so
the new default is 3 h. The parameter's record is ``noupdate``: a database that
still holds the old default 24 moves to the new one; any other value was an
administrator's choice and is kept. (An administrator who wants 24 h sets it
again after the upgrade.)
"""

import logging

from odoo import SUPERUSER_ID, api

from odoo.addons.iot_update.models.iot_box import (
    DEFAULT_OFFLINE_DELAY_HOURS,
    OFFLINE_DELAY_PARAM,
    OLD_DEFAULT_OFFLINE_DELAY_HOURS,
)

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    params = env["ir.config_parameter"]
    if params.get_param(OFFLINE_DELAY_PARAM) == str(OLD_DEFAULT_OFFLINE_DELAY_HOURS):
        params.set_param(OFFLINE_DELAY_PARAM, str(DEFAULT_OFFLINE_DELAY_HOURS))
        # The module's data recomputed the statuses with the old delay.
        env["iot.box"]._refresh_all_update_status()
        _logger.info(
            "IoT offline delay moved from the old default %s hours to %s hours",
            OLD_DEFAULT_OFFLINE_DELAY_HOURS,
            DEFAULT_OFFLINE_DELAY_HOURS,
        )
