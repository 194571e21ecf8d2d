// Copyright 2026 iot_update contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).

import {registry} from "@web/core/registry";

/**
 * A roll-out halted by itself: the dashboard says so above the boxes, the
 * failed box's card too; the banner opens the bundle, whose form shows why
 * and the failed box with its evidence. Prepared by tests/test_rollout.py.
 */
registry.category("web_tour.tours").add("iot_update_halted_rollout_tour", {
    steps: () => [
        {
            content: "The dashboard shows the halted roll-out above the boxes",
            trigger:
                ".o_iot_halted_rollout:contains(Roll-out halted):contains(canary boxes failed)",
        },
        {
            content: "The failed box's card says so",
            trigger: ".o_kanban_record:contains(tour-broken-canary):contains(Roll-out)",
        },
        {
            content: "Open the roll-out",
            trigger: ".o_iot_halted_rollout button:contains(Open)",
            run: "click",
        },
        {
            content: "The bundle says why it halted",
            trigger:
                ".o_form_view .alert-danger:contains(Roll-out halted):contains(tour-broken-canary)",
        },
        {
            content: "Its Waves tab lists the failed box with its evidence",
            trigger:
                ".o_field_widget[name=rollout_failed_line_ids] .o_data_row:contains(tour-broken-canary):contains(no longer serves)",
        },
        {
            content: "Resume and Roll back are offered",
            trigger:
                ".o_form_view .o_form_statusbar button[name=action_rollout_resume]",
        },
    ],
});
