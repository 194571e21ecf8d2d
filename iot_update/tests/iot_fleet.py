# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A fleet with one box of every status, for the dashboard's tests."""

from datetime import timedelta
from unittest.mock import patch

from odoo import fields

from odoo.addons.iot_update.models.iot_box import IotBox

#: Digest of "the current handlers bundle" while the fleet patch is active.
CURRENT_DIGEST = "c" * 64
#: Newest published image while the fleet patch is active.
LATEST_IMAGE = "25.07"

#: name: (identifier, version, holds the current handlers, offline)
FLEET = {
    "fleet-offline": ("aa:bb:cc:00:00:01", "L24.11-18.0#1a2b3c4", True, True),
    "fleet-old-image": ("aa:bb:cc:00:00:02", "L24.01-18.0#1a2b3c4", True, False),
    "fleet-old-code": ("aa:bb:cc:00:00:03", "L24.11-17.0#1a2b3c4", True, False),
    "fleet-windows-old-code": ("aa:bb:cc:00:00:04", "W23.11-17.0-20241105", True, False),
    "fleet-no-handlers": ("aa:bb:cc:00:00:05", "L24.11-18.0#1a2b3c4", False, False),
    "fleet-up-to-date": ("aa:bb:cc:00:00:06", "L24.11-18.0#1a2b3c4", True, False),
    "fleet-newest": ("aa:bb:cc:00:00:07", "L25.07-18.0#1a2b3c4", True, False),
}


def fleet_patchers():
    """Fix the two server facts the fleet's statuses depend on besides the
    boxes themselves: which bundle is current and which image is the newest
    (their real sources belong to the handlers and image feed features)."""
    return [
        patch.object(IotBox, "_handlers_current", lambda box, facts: box.handlers_digest == CURRENT_DIGEST),
        patch.object(IotBox, "_get_latest_image", lambda model: LATEST_IMAGE),
    ]


def make_fleet(case, names=None, company=None):
    """Check in the boxes of ``FLEET`` through the check-in service, then give
    them the handlers and last contact their names say. Returns {name: box}."""
    boxes = {}
    for name in names or FLEET:
        identifier, version, handlers, offline = FLEET[name]
        case.check_in(identifier=identifier, name=name, version=version)
        box = case.box(identifier)
        vals = {}
        if handlers:
            vals.update(handlers_digest=CURRENT_DIGEST, handlers_date=fields.Datetime.now())
        if offline:
            vals["last_contact"] = fields.Datetime.now() - timedelta(days=30)
        if company is not None:
            vals["company_id"] = company.id
        box.write(vals)
        box._refresh_update_status()
        boxes[name] = box
    return boxes
