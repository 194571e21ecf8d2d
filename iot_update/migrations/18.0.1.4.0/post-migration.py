# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Roll-outs: a bundle held before the upgrade (canary boxes only, released
by hand) gets the roll-out plan of the settings, its canary wave open; the
boxes due it are those of that wave, as the canaries were."""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    Bundle = env["iot.handlers.bundle"]
    for bundle in Bundle.search([("state", "=", "held"), ("rollout_state", "=", False)]):
        bundle._rollout_start()
        Bundle._apply_rollout(bundle.variant)
