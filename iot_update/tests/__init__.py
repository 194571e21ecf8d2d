# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from . import test_access
from . import test_box_log
from . import test_box_log_http
from . import test_box_log_properties
from . import test_bundle_change
from . import test_bundle_records
from . import test_bundle_rollout
from . import test_bus_disconnection
from . import test_bus_liveness
from . import test_bus_subscription
from . import test_checkin
from . import test_concurrent_requests
from . import test_event_access
from . import test_handlers_genuine_box
from . import test_handlers_genuine_box19
from . import test_handlers_http
from . import test_handlers_properties
from . import test_handlers_service
from . import test_image_feed
from . import test_iot_settings
from . import test_rollout
from . import test_setup_http
from . import test_setup_properties
from . import test_setup_performance
from . import test_tour
from . import test_views
