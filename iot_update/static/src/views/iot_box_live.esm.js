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
 * The halted roll-outs, for the banner above the dashboard: read when the
 * view opens and again when boxes change.
 *
 * @returns {Object} state whose ``rollouts`` lists the halted roll-outs
 */
export function useHaltedRollouts() {
    const orm = useService("orm");
    const state = useState({rollouts: []});
    const load = async () => {
        state.rollouts = await orm.searchRead(
            "iot.handlers.bundle",
            [
                ["state", "=", "held"],
                ["rollout_state", "=", "halted"],
            ],
            ["display_name", "rollout_halt_reason"]
        );
    };
    onWillStart(load);
    return {state, load};
}

export class IotBoxKanbanController extends KanbanController {
    static template = "iot_update.IotBoxKanbanView";

    setup() {
        super.setup();
        this.halted = useHaltedRollouts();
        useBoxesChanged(() => Promise.all([this.model.load(), this.halted.load()]));
    }

    openHaltedRollout(rollout) {
        this.actionService.doAction({
            type: "ir.actions.act_window",
            res_model: "iot.handlers.bundle",
            res_id: rollout.id,
            views: [[false, "form"]],
        });
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
