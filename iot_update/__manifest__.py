# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "IoT Box Updates",
    "summary": "Serve drivers to IoT boxes and see which boxes need an image, code or drivers update",
    "version": "18.0.1.6.0",
    "category": "Internet of Things (IoT)",
    "license": "LGPL-3",
    "author": "iot_update contributors",
    "website": "https://github.com/iot-update/iot_update",
    "maintainers": ["iot-update"],
    "development_status": "Beta",
    "depends": ["base_setup", "bus", "web"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/iot_update_security.xml",
        "security/ir.model.access.csv",
        "data/iot_image_requirement_data.xml",
        "data/iot_update_data.xml",
        "data/ir_cron_data.xml",
        "data/iot_box_log_data.xml",
        "views/iot_box_views.xml",
        "views/iot_device_views.xml",
        "views/iot_box_event_views.xml",
        "views/iot_handlers_bundle_views.xml",
        "views/iot_image_requirement_views.xml",
        "views/iot_image_release_views.xml",
        "views/res_config_settings_views.xml",
        "views/iot_update_settings_views.xml",
        "views/iot_box_log_views.xml",
        "views/iot_rollout_views.xml",
        "views/iot_update_menus.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "iot_update/static/src/views/**/*",
        ],
        "web.assets_tests": [
            "iot_update/static/tests/tours/**/*",
        ],
    },
    "application": True,
}
