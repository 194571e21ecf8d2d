# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "IoT Box Updates: benchmark fixture",
    "summary": "Extra handler files and a zip-on-every-request baseline route, for bench/handlers_bench.py only",
    "version": "18.0.1.0.0",
    "category": "Hidden",
    "license": "LGPL-3",
    "author": "iot_update contributors",
    "depends": ["iot_update"],
    "installable": True,
}
