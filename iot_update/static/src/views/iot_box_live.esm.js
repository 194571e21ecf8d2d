// Copyright 2026 iot_update contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).

import {onWillStart, onWillUnmount, useState} from "@odoo/owl";
import {FormController} from "@web/views/form/form_controller";
import {KanbanController} from "@web/views/kanban/kanban_controller";
import {ListController} from "@web/views/list/list_controller";
import {formView} from "@web/views/form/form_view";
import {kanbanView} from "@web/views/kanban/kanban_view";
import {listView} from "@web/views/list/list_view";
import {registry} from "@web/core/registry";
import {useDebounced} from "@web/core/utils/timing";
import {useService} from "@web/core/utils/hooks";

/** Notification the server sends, once per transaction, when box statuses changed. */
export const BOXES_CHANGED = "iot_update/boxes_changed";
/** Milliseconds: a burst of notifications reloads the view once. */
export const RELOAD_DELAY = 500;

/**
 * Reload the view's records when the server notifies that boxes changed
 * (went offline, back online, outdated...), without a reload of the page.
 * A form being edited is left alone.
 *
 * @param {Function} reload
 */
export function useBoxesChanged(reload) {
    const busService = useService("bus_service");
    const debounced = useDebounced(reload, RELOAD_DELAY);
    const onChanged = () => debounced();
    busService.subscribe(BOXES_CHANGED, onChanged);
    onWillUnmount(() => busService.unsubscribe(BOXES_CHANGED, onChanged));
}

/**
 * What the dashboard shows above the boxes, read when the view opens and
 * again when boxes change: the halted roll-outs, and how many boxes reported
 * errors in the last 24 hours.
 *
 * @returns {Object} ``state`` (``rollouts``, ``erroring``) and ``load()``
 */
export function useFleetAlerts() {
    const orm = useService("orm");
    const state = useState({rollouts: [], erroring: 0});
    const load = async () => {
        const [rollouts, erroring] = await Promise.all([
            orm.searchRead(
                "iot.handlers.bundle",
                [
                    ["state", "=", "held"],
                    ["rollout_state", "=", "halted"],
                ],
                ["display_name", "rollout_halt_reason"]
            ),
            orm.searchCount("iot.box", [["reporting_errors", "=", true]]),
        ]);
        Object.assign(state, {rollouts, erroring});
    };
    onWillStart(load);
    return {state, load};
}

export class IotBoxKanbanController extends KanbanController {
    static template = "iot_update.IotBoxKanbanView";

    setup() {
        super.setup();
        this.alerts = useFleetAlerts();
        useBoxesChanged(() => Promise.all([this.model.load(), this.alerts.load()]));
    }

    openHaltedRollout(rollout) {
        this.actionService.doAction({
            type: "ir.actions.act_window",
            res_model: "iot.handlers.bundle",
            res_id: rollout.id,
            views: [[false, "form"]],
        });
    }

    /** Apply the dashboard's "Reporting errors" filter. */
    showErroringBoxes() {
        const item = Object.values(this.env.searchModel.searchItems).find(
            (searchItem) => searchItem.name === "reporting_errors"
        );
        if (
            item &&
            !this.env.searchModel.query.some((entry) => entry.searchItemId === item.id)
        ) {
            this.env.searchModel.toggleSearchItem(item.id);
        }
    }
}

export class IotBoxListController extends ListController {
    setup() {
        super.setup();
        useBoxesChanged(() => this.model.load());
    }
}

export class IotBoxFormController extends FormController {
    setup() {
        super.setup();
        useBoxesChanged(async () => {
            const root = this.model.root;
            if (root && !root.isNew && !(await root.isDirty())) {
                await root.load();
            }
        });
    }
}

registry.category("views").add("iot_box_kanban", {
    ...kanbanView,
    Controller: IotBoxKanbanController,
});
registry.category("views").add("iot_box_list", {
    ...listView,
    Controller: IotBoxListController,
});
registry.category("views").add("iot_box_form", {
    ...formView,
    Controller: IotBoxFormController,
});
