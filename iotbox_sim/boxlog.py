# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A driver that fails to load on a box, and what the genuine 18.0 box then
sends to ``POST /iot/log`` (SPEC 3.5, 3.6).

``load_iot_handlers`` (18.0 ``hw_drivers/tools/helpers.py``) imports each
handler file of the bundle it downloaded; when one fails it logs, on the
logger of that module::

    _logger.error('Unable to load file: %s ', file)
    _logger.error('An error encountered : %s ', e)

and skips the file: the devices that driver served are not detected, so they
are missing from the box's next check-in. The box's ``AsyncHTTPHandler``
(``hw_drivers/server_logger.py``) formats each record with Odoo's
``DBFormatter`` and the format below, and posts a batch whose first line is
``mac <MAC>``, then one ``<levelno>,<formatted line>`` per record, each
followed by ``<log/>`` and a newline, as a streamed (chunked) body. (The box
gives up on the answer after 0.5 s; the simulator waits as for its other
requests, so that a busy demo server does not lose the lines.)
"""

import fnmatch
import logging
import os
import posixpath
from typing import NamedTuple

LOG = "/iot/log"
#: The format of the box's handler (``server_logger.py``).
LOG_FORMAT = "%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s"
#: The logger of ``hw_drivers/tools/helpers.py`` on the box.
HELPERS_LOGGER = "odoo.addons.hw_drivers.tools.helpers"
#: The messages ``load_iot_handlers`` logs for a file that fails to load.
LOAD_ERRORS = ("Unable to load file: %s ", "An error encountered : %s ")
END = b"<log/>\n"
#: The error of a driver importing a library the box's image lacks (``str`` of the exception).
DEFAULT_ERROR = "No module named 'missing_sdk'"
#: Files each platform's box loads (``list_file_by_os``).
PLATFORM_GLOBS = {"linux": "*[!W].*", "windows": "*[!L].*"}


class BrokenDriver(NamedTuple):
    """A handler file that fails to load on the named boxes."""

    file: str  # a handler file name, e.g. "ScaleDriver.py"
    boxes: frozenset  # names of the boxes on which it fails
    device_types: frozenset  # types of the devices it served (they go missing)
    error: str = DEFAULT_ERROR

    def breaks(self, box, entries):
        """True when ``box`` is one of the boxes and the bundle of zip
        ``entries`` holds the file where the box loads it."""
        if box.name not in self.boxes:
            return False
        for entry in entries:
            folder, name = posixpath.split(entry)
            if folder in ("drivers", "interfaces") and name == self.file:
                return fnmatch.fnmatchcase(name, PLATFORM_GLOBS[box.platform])
        return False

    def remaining_devices(self, devices):
        """The devices the box still serves without the driver."""
        return {key: values for key, values in devices.items() if values.get("type") not in self.device_types}


class _BoxFormatter(logging.Formatter):
    """What Odoo's ``DBFormatter`` does: the process id and the thread's
    database (``?`` in the box's threads) added to the record."""

    def format(self, record):
        record.pid = os.getpid()
        record.dbname = "?"
        # Odoo's LogRecord factory sets it to "" (only werkzeug's records get a value).
        record.perf_info = getattr(record, "perf_info", "")
        return super().format(record)


_FORMATTER = _BoxFormatter(LOG_FORMAT)


def load_error_lines(file, error):
    """``[(levelno, formatted line)]``: what the box logs for ``file`` failing with ``error``."""
    lines = []
    for message, argument in zip(LOAD_ERRORS, (file, error), strict=True):
        record = logging.LogRecord(HELPERS_LOGGER, logging.ERROR, "helpers.py", 0, message, (argument,), None)
        lines.append((record.levelno, _FORMATTER.format(record)))
    return lines


def batch_chunks(mac, lines):
    """The chunks of the body the 18.0 ``AsyncHTTPHandler`` posts."""
    yield bytes(f"mac {mac}", encoding="utf-8") + END
    for levelno, line in lines:
        yield bytes(f"{levelno},{line}", encoding="utf-8") + END
