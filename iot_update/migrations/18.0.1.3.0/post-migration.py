# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The status refresh runs every minute: a box disconnected from the bus is
offline once its grace (5 minutes by default) ended. The scheduled action is
data with noupdate: an existing database still has it every 15 minutes, which
this sets to 1 minute unless an administrator changed it."""


def migrate(cr, version):
    cr.execute(
        """UPDATE ir_cron SET interval_number = 1, interval_type = 'minutes'
            WHERE id = (SELECT res_id FROM ir_model_data
                         WHERE module = 'iot_update' AND name = 'ir_cron_refresh_update_status')
              AND interval_number = 15 AND interval_type = 'minutes'"""
    )
