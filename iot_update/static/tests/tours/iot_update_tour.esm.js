// Copyright 2026 iot_update contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).

import {registry} from "@web/core/registry";

/**
 * The administrator's daily path: open the dashboard, keep the boxes that need
 * an image upgrade, open one and turn its automatic drivers update off.
 * The boxes are prepared by tests/odoo/test_tour.py, which checks the result.
 */
registry.category("web_tour.tours").add("iot_update_dashboard_tour", {
    steps: () => [
        {
            content: "The dashboard groups the boxes by status, worst first",
            trigger:
                ".o_kanban_view .o_kanban_group:first-child .o_column_title:contains(Offline)",
        },
        {
            content: "Every status has its column, with its count",
            trigger:
                ".o_kanban_group:contains(Image upgrade required) .o_kanban_record:contains(tour-old-image)",
        },
        {
            content: "Open the search options",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Keep the boxes that need an image upgrade",
            trigger: ".o_filter_menu .o-dropdown-item:contains(Needs image upgrade)",
            run: "click",
        },
        {
            content: "The filter is applied",
            trigger: ".o_searchview_facet:contains(Needs image upgrade)",
        },
        {
            content: "Only the boxes that need an image upgrade remain",
            trigger:
                ".o_kanban_view:not(:has(.o_kanban_record:contains(tour-up-to-date)))",
        },
        {
            content: "Open the box",
            trigger: ".o_kanban_record:contains(tour-old-image)",
            run: "click",
        },
        {
            content: "The form says what to do",
            trigger:
                ".o_form_view .o_field_widget[name=update_advice]:contains(Reflash the SD card)",
        },
        {
            content: "Untick Automatic Drivers update",
            trigger:
                ".o_form_view .o_field_widget[name=drivers_auto_update] input:checked",
            run: "click",
        },
        {
            content: "The checkbox is unticked",
            trigger:
                ".o_form_view .o_field_widget[name=drivers_auto_update] input:not(:checked)",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save:enabled",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_view .o_form_saved",
        },
    ],
});

/**
 * IoT > Configuration > Settings: generate a new pairing token (the form shows
 * it at once), then change the offline delay and save.
 * tests/odoo/test_tour.py sets the old token and checks the new token and delay.
 */
registry.category("web_tour.tours").add("iot_update_pairing_token_tour", {
    steps: () => [
        {
            content: "The IoT settings show the current pairing token",
            trigger: ".o_field_widget[name=pairing_token]:contains(tour-old-token)",
        },
        {
            content: "Generate a new token",
            trigger: "button[name=action_generate_pairing_token]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The new token is shown",
            trigger:
                ".o_field_widget[name=pairing_token] span:not(:empty):not(:contains(tour-old-token))",
        },
        {
            content: "Boxes are offline after 12 hours",
            trigger: ".o_field_widget[name=offline_delay_hours] input",
            run: "edit 12",
        },
        {
            content: "Save the IoT settings",
            trigger: "button[name=action_save]",
            run: "click",
        },
        {
            content: "The settings are saved",
            trigger: ".o_notification:contains(IoT settings saved)",
        },
    ],
});

/**
 * IoT > Driver Bundles: release the held Linux bundle, see who did it in its
 * roll-out log, then the bundle each delivery sent in IoT > History and the
 * release in IoT > Roll-out Log.
 * tests/odoo/test_tour.py holds the bundle, serves it to a canary box and
 * checks the result.
 */
registry.category("web_tour.tours").add("iot_update_rollout_tour", {
    steps: () => [
        {
            content: "Open the held Linux bundle",
            trigger:
                ".o_list_view .o_data_row:contains(IoT Box (Linux)):contains(Held) td[name=variant]",
            run: "click",
        },
        {
            content: "Release it to all",
            trigger: ".o_form_view button[name=action_release]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The bundle is current",
            trigger: ".o_statusbar_status .o_arrow_button_current:contains(Current)",
        },
        {
            content: "Open its roll-out log",
            trigger: ".o_notebook .nav-link:contains(Roll-out log)",
            run: "click",
        },
        {
            content: "The release is logged with who did it",
            trigger:
                ".o_field_widget[name=log_ids] .o_data_row:contains(Released to all):contains(tour rollout admin)",
        },
        {
            content: "Open the history",
            trigger:
                ".o_menu_sections [data-menu-xmlid='iot_update.iot_box_event_menu']",
            run: "click",
        },
        {
            content: "The canary's delivery names its bundle, not a digest",
            trigger:
                ".o_list_view .o_data_row:contains(tour-canary):contains(Handlers delivery) td[name=bundle_id]:contains(IoT Box (Linux))",
        },
        {
            content: "Open the roll-out log",
            trigger:
                ".o_menu_sections [data-menu-xmlid='iot_update.iot_handlers_bundle_log_menu']",
            run: "click",
        },
        {
            content: "The release and the holding turned on are there",
            trigger:
                ".o_list_view:has(.o_data_row:contains(Released to all)):has(.o_data_row:contains(New bundles held))",
        },
    ],
});
