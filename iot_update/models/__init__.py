# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from . import iot_box
from . import iot_box_checkin
from . import iot_box_errors
from . import iot_box_event
from . import iot_box_log
from . import iot_box_liveness
from . import iot_box_rollout
from . import iot_device
from . import iot_handlers_bundle
from . import iot_handlers_bundle_change
from . import iot_handlers_bundle_file
from . import iot_handlers_bundle_log
from . import iot_handlers_bundle_rollout
from . import iot_image_release
from . import iot_image_requirement
from . import iot_rollout_line
from . import iot_rollout_wave
from . import iot_update_settings
from . import ir_http
from . import ir_websocket
from . import res_config_settings
