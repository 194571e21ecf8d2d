// Copyright 2026 iot_update contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).

import {registry} from "@web/core/registry";
import {rpc} from "@web/core/network/rpc";

const BOX = "tour-live-box";

/**
 * The dashboard is open; a box disconnected from the bus for longer than the
 * grace is made offline by the status refresh (run here as the scheduled
 * action would), and its card moves to the Offline column without a reload.
 * Prepared by tests/test_tour.py (TestLiveDashboardTour).
 */
registry.category("web_tour.tours").add("iot_update_live_dashboard_tour", {
    steps: () => [
        {
            content: "The box is on the dashboard, not offline yet",
            trigger: `.o_kanban_group:has(.o_column_title:contains(Up to date)) .o_kanban_record:contains(${BOX})`,
            run: async () => {
                // A page reload would lose this mark.
                window.iotUpdateNoReload = true;
                const ids = await rpc("/web/dataset/call_kw/ir.cron/search", {
                    model: "ir.cron",
                    method: "search",
                    args: [[["cron_name", "=", "IoT: refresh box statuses"]]],
                    kwargs: {},
                });
                await rpc("/web/dataset/call_kw/ir.cron/method_direct_trigger", {
                    model: "ir.cron",
                    method: "method_direct_trigger",
                    args: [ids],
                    kwargs: {},
                });
            },
        },
        {
            content: "Its card moved to the Offline column by itself",
            trigger: `.o_kanban_group:has(.o_column_title:contains(Offline)) .o_kanban_record:contains(${BOX})`,
            run: () => {
                if (!window.iotUpdateNoReload) {
                    throw new Error("the page was reloaded");
                }
            },
        },
    ],
});
