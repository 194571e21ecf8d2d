# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A box's liveness from the end of its bus connection (issue 17, SPEC 3.4).

The bus calls ``Websocket.onclose`` callbacks when a websocket ends. A box's
websocket is tagged at its proven subscription with the box's identifier and
a key of that connection (``bus_connection``, stored on the box at each new
connection); its close records ``disconnected_since``, unless the box already
reconnected (another key) or the server is stopping. A box that has not
subscribed again within the grace is offline (the refresh cron decides, every
minute, touching only the boxes whose grace just ended).
"""

import logging
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.service import server as odoo_server
from odoo.tools import SQL

from odoo.addons.bus.websocket import LifecycleEvent, Websocket

from ..tools.settings import positive_int

_logger = logging.getLogger(__name__)

GRACE_PARAM = "iot_update.disconnect_grace_minutes"
DEFAULT_GRACE_MINUTES = 5
#: Attributes set on a box's websocket (``Websocket`` instances accept them).
WS_BOX_ATTR = "_iot_update_box"
WS_KEY_ATTR = "_iot_update_bus_connection"
#: Notification sent to the IoT users when box statuses changed.
BOXES_CHANGED = "iot_update/boxes_changed"

#: True once this server process began to stop: the bus then closes every
#: websocket, and those closes are not the boxes' disconnections.
server_stopping = False


def _on_box_websocket_close(env, websocket):
    """``Websocket.onclose`` callback: record the end of a box's connection."""
    box = getattr(websocket, WS_BOX_ATTR, None)
    if not box or server_stopping:
        return
    identifier, key = box
    if "iot.box" not in env:
        return
    env["iot.box"].sudo()._record_bus_disconnection(identifier, key)
    # The bus rolls back the cursor it gave the callbacks: commit here.
    env.cr.commit()


def mark_server_stopping():
    """First of the server's stop functions: closes from now on are the
    server's own, they write nothing and cost nothing (the callback is
    removed, so the bus does not even open a cursor for them)."""
    global server_stopping  # noqa: PLW0603 - one flag per server process
    server_stopping = True
    # A new set, not a change of the one a closing websocket may be iterating.
    callbacks = Websocket._Websocket__event_callbacks
    callbacks[LifecycleEvent.CLOSE] = callbacks[LifecycleEvent.CLOSE] - {_on_box_websocket_close}


Websocket.onclose(_on_box_websocket_close)
if mark_server_stopping not in odoo_server.CommonServer._on_stop_funcs:
    odoo_server.CommonServer._on_stop_funcs.insert(0, mark_server_stopping)
# The gevent worker (prefork) stops its HTTP server, which ends the websocket
# greenlets, before it calls the stop functions: raise the flag first.
_gevent_stop = odoo_server.GeventServer.stop
if not getattr(_gevent_stop, "_iot_update_liveness", False):

    def _stop(self, *args, **kwargs):
        mark_server_stopping()
        return _gevent_stop(self, *args, **kwargs)

    _stop._iot_update_liveness = True
    odoo_server.GeventServer.stop = _stop


# The liveness of a box from its bus connection, kept apart from its check-in
# (iot_box_checkin.py) and from its statuses (iot_box.py).
class IotBox(models.Model):
    _inherit = "iot.box"  # pylint: disable=consider-merging-classes-inherited

    disconnected_since = fields.Datetime(
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="End of the box's last bus connection, when it has not subscribed again since.",
    )
    bus_connection = fields.Char(
        readonly=True, copy=False, groups="base.group_system", help="Key of the box's current bus connection."
    )
    bus_state = fields.Selection(
        [("connected", "Connected"), ("disconnected", "Disconnected"), ("never", "Never connected")],
        string="Bus",
        compute="_compute_bus_state",
        help="Whether the box's bus websocket is open now, as far as this server knows.",
    )

    @api.depends("disconnected_since", "last_seen_bus")
    def _compute_bus_state(self):
        for box in self:
            if box.disconnected_since:
                box.bus_state = "disconnected"
            elif box.last_seen_bus:
                box.bus_state = "connected"
            else:
                box.bus_state = "never"

    # ------------------------------------------------------------------
    # The grace
    # ------------------------------------------------------------------

    @api.model
    def _get_disconnect_grace_minutes(self):
        return positive_int(self.env["ir.config_parameter"].sudo().get_param(GRACE_PARAM), DEFAULT_GRACE_MINUTES)

    @api.model
    def _update_facts(self, handlers=True):
        facts = super()._update_facts(handlers=handlers)
        facts["grace_before"] = fields.Datetime.now() - timedelta(minutes=self._get_disconnect_grace_minutes())
        return facts

    def _offline_now(self, facts):
        """Offline also when disconnected for longer than the grace, with no
        check-in since."""
        if super()._offline_now(facts):
            return True
        since = self.disconnected_since
        return bool(since and since < facts["grace_before"] and not (self.last_contact and self.last_contact > since))

    # ------------------------------------------------------------------
    # Connections
    # ------------------------------------------------------------------

    @api.model
    def _bus_connection_key(self, websocket, identifier):
        """Tag ``websocket`` as the connection of box ``identifier``; return
        the connection's key (the same for every subscription on it)."""
        key = getattr(websocket, WS_KEY_ATTR, None)
        if not key:
            key = secrets.token_hex(8)
            setattr(websocket, WS_KEY_ATTR, key)
        setattr(websocket, WS_BOX_ATTR, (identifier, key))
        return key

    @api.model
    def _record_bus_disconnection(self, identifier, key):
        """The connection ``key`` of box ``identifier`` ended now: one UPDATE,
        which writes nothing when the box already reconnected (its key is
        another) or was already recorded disconnected."""
        self.env.cr.execute(
            SQL(
                """UPDATE iot_box SET disconnected_since = %(now)s
                    WHERE identifier = %(identifier)s AND bus_connection = %(key)s
                      AND disconnected_since IS NULL""",
                now=fields.Datetime.now(),
                identifier=identifier,
                key=key,
            )
        )
        return self.env.cr.rowcount

    # ------------------------------------------------------------------
    # Refreshing the statuses
    # ------------------------------------------------------------------

    @api.model
    def _cron_refresh_update_status(self):
        """Also make offline the boxes whose grace just ended: found by the
        partial index of ``disconnected_since``, nothing read per idle box."""
        result = super()._cron_refresh_update_status()
        self.flush_model(["disconnected_since", "is_offline", "last_contact"])
        grace_before = fields.Datetime.now() - timedelta(minutes=self._get_disconnect_grace_minutes())
        self.env.cr.execute(
            SQL(
                """SELECT id FROM iot_box
                    WHERE disconnected_since IS NOT NULL AND disconnected_since < %(before)s
                      AND is_offline IS NOT TRUE
                      AND (last_contact IS NULL OR last_contact <= disconnected_since)""",
                before=grace_before,
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        if ids:
            self.browse(ids)._refresh_update_status()
        return result

    def _refresh_update_status(self):
        """Recompute, then record a "went offline" event for each box that
        turned offline (set-based) and notify the dashboards once."""
        if not self:
            return super()._refresh_update_status()
        self.flush_recordset(["is_offline", "update_status"])
        self.env.cr.execute(SQL("SELECT id, is_offline, update_status FROM iot_box WHERE id = ANY(%s)", list(self.ids)))
        before = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        result = super()._refresh_update_status()
        self.flush_recordset(["is_offline", "update_status"])
        self.env.cr.execute(SQL("SELECT id, is_offline, update_status FROM iot_box WHERE id = ANY(%s)", list(self.ids)))
        after = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        went_offline = [box_id for box_id, row in after.items() if row[0] and not before.get(box_id, (True,))[0]]
        if went_offline:
            self._record_went_offline(went_offline)
        changed = [box_id for box_id, row in after.items() if row != before.get(box_id)]
        if changed:
            self._notify_boxes_changed(changed)
        return result

    @api.model
    def _record_went_offline(self, box_ids):
        """One "went offline" event per box of ``box_ids``, in one INSERT."""
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                """INSERT INTO iot_box_event (kind, date, box_id, company_id, identifier, detail)
                   SELECT 'went_offline', %(now)s, id, company_id, identifier,
                          'last seen ' || COALESCE(to_char(last_seen, 'YYYY-MM-DD HH24:MI:SS') || ' UTC', 'never')
                          || COALESCE(', disconnected from the bus at '
                                      || to_char(disconnected_since, 'YYYY-MM-DD HH24:MI:SS') || ' UTC', '')
                     FROM iot_box WHERE id = ANY(%(ids)s)""",
                now=now,
                ids=list(box_ids),
            )
        )
        self.browse(box_ids).invalidate_recordset(["event_ids"], flush=False)
        _logger.info("%s IoT boxes went offline", len(box_ids))

    # ------------------------------------------------------------------
    # The dashboard
    # ------------------------------------------------------------------

    @api.model
    def _notify_boxes_changed(self, box_ids):
        """Tell the open dashboards that boxes changed, once per transaction:
        the ids are collected and one notification is sent at commit."""
        data = self.env.cr.precommit.data
        pending = data.get(BOXES_CHANGED)
        if pending is None:
            pending = data[BOXES_CHANGED] = set()
            self.env.cr.precommit.add(self._send_boxes_changed)
        pending.update(box_ids)

    def _send_boxes_changed(self):
        ids = self.env.cr.precommit.data.pop(BOXES_CHANGED, None)
        if not ids:
            return
        group = self.env.ref("iot_update.group_iot_user", raise_if_not_found=False)
        if not group:
            return
        # A fleet-wide change sends the count, not 10,000 ids.
        payload = {"count": len(ids), "ids": sorted(ids)[:100]}
        self.env["bus.bus"].sudo()._sendone(group, BOXES_CHANGED, payload)
