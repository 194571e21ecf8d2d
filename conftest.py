# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""pytest set-up shared by every test (``tests/`` and the addon's ``iot_update/tests``):
no test may log a warning it does not expect (clean logs)."""

import logging

import pytest


def _not_the_import_error(record):
    """pytest-odoo imports odoo.tests before it turns test mode on, which Odoo
    reports with an error meant for business modules: that record only is dropped
    (every other record of odoo.tests.common, a patcher left active say, is kept)."""
    return not str(record.msg).startswith("Importing test framework, avoid importing")


logging.getLogger("odoo.tests.common").addFilter(_not_the_import_error)


class _WarningCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_unexpected_warnings():
    """Fail a test during which anything logged a warning or an error it did not
    expect: expected ones are caught with ``assertLogs`` or ``mute_logger``."""
    collector = _WarningCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.records:
        lines = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in collector.records[:10])
        pytest.fail(f"unexpected log records:\n{lines}", pytrace=False)
