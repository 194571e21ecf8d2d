# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A fleet of simulated IoT boxes that speak the genuine box protocol.

``iotbox-sim`` acts as N boxes starting up: each checks in (``POST /iot/setup``)
and downloads its handlers (``POST /iot/get_handlers``), as the genuine box
software does at start. See ``iotbox-sim --help``.
"""
