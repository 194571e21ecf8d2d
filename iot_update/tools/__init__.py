# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Plain-Python logic of iot_update: nothing here imports Odoo.

The models call these functions; the unit tests exercise them without a
database, and so can a machine without Odoo.
"""
