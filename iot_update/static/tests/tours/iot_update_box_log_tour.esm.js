// Copyright 2026 iot_update contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).

import {registry} from "@web/core/registry";

/**
 * A box reports errors: its card says so, the dashboard counts it and its
 * "Show them" applies the dashboard's filter, which keeps it,
 * and its form's Box Log tab shows the line it sent, with its level.
 * The boxes are prepared by tests/test_box_log_http.py.
 */
registry.category("web_tour.tours").add("iot_update_box_log_tour", {
    steps: () => [
        {
            content: "The card of the box that sent an error says so",
            trigger:
                ".o_kanban_record:contains(tour-erroring):contains(Reporting errors)",
        },
        {
            content: "The quiet box's card does not",
            trigger:
                ".o_kanban_record:contains(tour-quiet):not(:contains(Reporting errors))",
        },
        {
            content: "The dashboard counts the boxes reporting errors",
            trigger:
                ".o_iot_erroring_boxes:contains(1 box reported errors in the last 24 hours)",
        },
        {
            content: "Show them: the dashboard's filter",
            trigger: ".o_iot_erroring_boxes button:contains(Show them)",
            run: "click",
        },
        {
            content: "The filter is applied",
            trigger: ".o_searchview_facet:contains(Reporting errors)",
        },
        {
            content: "Only the box reporting errors remains",
            trigger: ".o_kanban_view:not(:has(.o_kanban_record:contains(tour-quiet)))",
        },
        {
            content: "Open the box",
            trigger: ".o_kanban_record:contains(tour-erroring)",
            run: "click",
        },
        {
            content: "Open its Box Log tab",
            trigger: ".o_form_view .o_notebook a:contains(Box Log)",
            run: "click",
        },
        {
            content: "The line the box sent, with its level",
            trigger:
                ".o_field_widget[name=log_ids] .o_data_row:contains(Unable to load file):contains(Error)",
        },
    ],
});
