# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).

import logging
import secrets
from contextlib import closing
from datetime import timedelta

import psycopg2.errors

from odoo import api, fields, models
from odoo.tools import SQL, consteq
from odoo.tools import hmac as odoo_hmac

from ..tools.bus_subscription import CHANNEL_PREFIX, proven_identity
from ..tools.pg_array import array_literal
from .iot_box import (
    BUS_CONTACT_THROTTLE_MINUTES,
    CHANNEL_SCOPE,
    FIND_FIELDS,
    PAIRING_TOKEN_PARAM,
    hash_token,
    same_token,
)

_logger = logging.getLogger(__name__)


class IotBox(models.Model):
    """How boxes speak to the server: the pairing token, check-ins
    (POST /iot/setup), their bus subscriptions and the devices they report."""

    _inherit = "iot.box"

    # ------------------------------------------------------------------
    # Pairing token
    # ------------------------------------------------------------------

    @api.model
    def _get_pairing_token(self):
        return self.env["ir.config_parameter"].sudo().get_param(PAIRING_TOKEN_PARAM) or ""

    @api.model
    def _ensure_pairing_token(self):
        """Create the pairing token when the database has none (called at install)."""
        if not self._get_pairing_token():
            self._generate_pairing_token()

    @api.model
    def _generate_pairing_token(self):
        token = secrets.token_urlsafe(24)
        self.env["ir.config_parameter"].sudo().set_param(PAIRING_TOKEN_PARAM, token)
        return token

    def _token_admits(self, token):
        """True when ``token`` may speak for ``self``: the token the box was
        admitted with, or the database's current pairing token."""
        self.ensure_one()
        if not token:
            return False
        pairing = self._get_pairing_token()
        if pairing and same_token(token, pairing):
            return True
        return bool(self.token_hash) and consteq(hash_token(token), self.token_hash)

    # ------------------------------------------------------------------
    # Check-in (POST /iot/setup)
    # ------------------------------------------------------------------

    @api.model
    def _find_box(self, identifier, mac=""):
        """The box a request sending ``identifier`` and ``mac`` speaks for,
        archived ones included (docs/protocol.md, "Which box a request speaks for"):

        1. the box whose identifier is ``identifier``;
        2. else the box whose identifier is ``mac``: the record of a box that
           used to send its MAC address as identifier (18.0);
        3. else a box whose MAC address is ``mac``;
        4. else a box whose MAC address is ``identifier`` (a 19 box's record,
           asked for by MAC address);

        the oldest record first where several boxes share a MAC address. The
        answer depends neither on names nor on the order of rows on disk.
        """
        keys = list(dict.fromkeys(key for key in (identifier, mac) if key))
        if not keys:
            return self.browse()
        Box = self.with_context(active_test=False)
        query = Box._search(["|", ("identifier", "in", keys), ("mac", "in", keys)], limit=1)
        table = SQL.identifier(self._table)
        query.order = SQL(
            """CASE WHEN %(table)s.identifier = %(identifier)s THEN 0
                    WHEN %(table)s.identifier = %(mac)s THEN 1
                    WHEN %(table)s.mac = %(mac)s THEN 2
                    ELSE 3 END, %(table)s.id""",
            table=table,
            identifier=identifier or None,
            mac=mac or None,
        )
        # One query: the box and the fields check-ins and deliveries read.
        return Box._fetch_query(query, Box._determine_fields_to_fetch(FIND_FIELDS))

    @api.model
    def _find_log_boxes(self, keys):
        """What the write of log batches needs of the boxes ``keys`` (MAC
        addresses or serial numbers) speak for, each found as ``_find_box``
        finds it (the box whose identifier is the key, else the oldest whose
        MAC address is), in one query that looks each key up in the indexes
        of both columns, however many keys.

        Returns ``{key: {"id", "active", "checkin_remote_addr",
        "bus_remote_addr", "last_error_date", "name"}}`` for the keys a box
        has."""
        columns = ["id", "active", "checkin_remote_addr", "bus_remote_addr", "last_error_date", "name"]
        self.flush_model(["identifier", "mac", *columns[1:]])
        self.env.cr.execute(
            SQL(
                """SELECT key.key, found.*
                     FROM unnest(%(keys)s::varchar[]) AS key(key),
                          LATERAL (SELECT id, active, checkin_remote_addr, bus_remote_addr, last_error_date, name
                                     FROM iot_box
                                    WHERE identifier = key.key OR mac = key.key
                                 ORDER BY identifier = key.key DESC, id
                                    LIMIT 1) found""",
                keys=array_literal(sorted(keys)),
            )
        )
        return {key: dict(zip(columns, values, strict=True)) for key, *values in self.env.cr.fetchall()}

    @api.model
    def _iot_setup(self, request, remote_addr=None):
        """Register or update the box that sent ``request`` (a ``SetupRequest``).

        Returns the channel the box should subscribe to ("" for none). An
        unknown box is created only with the current pairing token; a known box
        is updated only with the token it was admitted with or the current
        pairing token. Refusals change nothing and are logged.
        """
        box = self._find_box(request.identifier, request.mac)
        token = request.token
        if not box:
            pairing = self._get_pairing_token()
            if not (token and pairing and same_token(token, pairing)):
                _logger.warning(
                    "IoT box %s (%s) refused: unknown box with a wrong pairing token", request.identifier, remote_addr
                )
                self._on_setup_refused(request, remote_addr, "unknown box, wrong pairing token")
                return ""
            box = self._create_from_setup(
                {
                    "name": request.name or request.identifier,
                    "identifier": request.identifier,
                    "mac": request.mac,
                    "ip": request.ip,
                    "version": request.version,
                    "last_contact": fields.Datetime.now(),
                    "checkin_remote_addr": remote_addr or False,
                    "token_hash": hash_token(token),
                }
            )
            _logger.info("IoT box %s (%s) admitted", request.identifier, request.name)
            box._sync_devices(request.devices)
            box._on_setup_accepted(request, remote_addr, admitted=True)
            return box._get_channel()

        if not box.active:
            _logger.warning("IoT box %s (%s) refused: the box is archived", request.identifier, remote_addr)
            box._on_setup_refused(request, remote_addr, "archived box")
            return ""
        if not box._token_admits(token):
            _logger.warning("IoT box %s (%s) refused: wrong token", request.identifier, remote_addr)
            box._on_setup_refused(request, remote_addr, "wrong token")
            return ""
        box._lock_for_update()
        if box.identifier != request.identifier:
            # Found by MAC address: no box holds this identifier (rule 1).
            box._claim_identifier(request.identifier)
        vals = {
            "ip": request.ip,
            "version": request.version,
            "last_contact": fields.Datetime.now(),
        }
        if remote_addr:
            vals["checkin_remote_addr"] = remote_addr
        if request.name:
            vals["name"] = request.name
        if request.mac:
            vals["mac"] = request.mac
        token_hash = hash_token(token)
        if box.token_hash != token_hash:
            # Admitted with the current pairing token: remember it from now on.
            vals["token_hash"] = token_hash
        # The stored status, as read with the box (a status still to be recomputed
        # by this transaction is not read: that would cost its recompute here).
        was_offline = not self.env.is_to_compute(self._fields["is_offline"], box) and box.is_offline
        box.write({key: value for key, value in vals.items() if box[key] != value or key == "last_contact"})
        box._sync_devices(request.devices)
        box._on_setup_accepted(request, remote_addr, admitted=False)
        if was_offline and not box.is_offline:
            # Read only for a box shown offline: a check-in of a box that is on costs nothing more.
            self.env["iot.box.event"].sudo()._record("back_online", box, detail="checked in", remote_addr=remote_addr)
            _logger.info("IoT box %s is back online (check-in from %s)", request.identifier, remote_addr)
        return box._get_channel()

    def _create_from_setup(self, vals):
        """Create the box of a first check-in.

        The row is claimed with ``INSERT ... ON CONFLICT DO NOTHING``: when a
        concurrent request created the same box after this transaction took its
        snapshot, PostgreSQL answers with a serialization failure, which Odoo's
        request loop retries with a fresh snapshot, where the box is known. (A
        plain create would fail with a unique violation, which is not retried.)
        """
        box_id = self._insert_identifier(vals["identifier"], vals["name"])
        if not box_id:  # created and committed before our snapshot: it is known
            return self._find_box(vals["identifier"])
        box = self.browse(box_id)
        defaults = self.default_get(["company_id", "drivers_auto_update"])
        box.write({**defaults, **vals})
        return box

    @api.model
    def _insert_identifier(self, identifier, name):
        """Insert a box row holding ``identifier``; its id, or None when a box
        visible to this transaction holds it. A box that holds it and is not
        visible (created by a concurrent transaction) raises a serialization
        failure."""
        now = self.env.cr.now()
        self.env.cr.execute(
            """INSERT INTO iot_box (identifier, name, active, create_uid, create_date, write_uid, write_date)
                    VALUES (%s, %s, true, %s, %s, %s, %s)
               ON CONFLICT (identifier) DO NOTHING
                 RETURNING id""",
            [identifier, name, self.env.uid, now, self.env.uid, now],
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        return row and row[0]

    def _claim_identifier(self, identifier):
        """Rename ``self`` onto ``identifier``, which no box holds in this
        transaction's snapshot (the caller found none).

        A box that took it since, in a concurrent transaction, makes the
        UPDATE fail with a unique violation, which Odoo would answer with an
        error page, at every check-in of this box. Then the identifier is
        claimed the way a first check-in claims it, which PostgreSQL reports
        as a serialization failure: Odoo retries the request, which finds the
        other box by its identifier.
        """
        self.ensure_one()
        self.flush_recordset()
        cr = self.env.cr
        try:
            with cr.savepoint(flush=False):
                cr.execute(
                    SQL("UPDATE iot_box SET identifier = %s WHERE id = %s", identifier, self.id), log_exceptions=False
                )
        except psycopg2.errors.UniqueViolation:
            with closing(cr.savepoint(flush=False)):  # rolled back: only its failure matters
                self._insert_identifier(identifier, identifier)
            raise  # the other box vanished meanwhile: nothing better to do
        self.invalidate_recordset(["identifier"], flush=False)
        self.modified(["identifier"])

    def _set_handlers(self, digest):
        """Record that ``self`` holds the handlers bundle ``digest`` as of now.

        A check-in or another delivery of the same box that committed since
        this transaction began makes PostgreSQL refuse this write with a
        serialization failure, which Odoo retries: an expected outcome, kept
        out of the error log (``log_exceptions=False`` on the statement that
        meets it).
        """
        self.ensure_one()
        now = fields.Datetime.now()
        if self.handlers_digest != digest:
            # The statuses depend on the digest: write() recomputes them. Its
            # UPDATE runs at the next flush; the row is locked first, so that
            # the conflict, if any, is met here.
            self._lock_for_update()
            self.write({"handlers_digest": digest, "handlers_date": now})
            return
        # The same bundle again, as at each start of the box: only the date
        # changes, and one UPDATE does it without write()'s machinery (the
        # transaction's clock, the flush) on the fleet's busiest route.
        # modified() still tells the ORM what changed.
        fnames = ["handlers_date", "write_uid", "write_date"]
        self.flush_recordset(fnames)
        self.env.cr.execute(
            SQL(
                "UPDATE iot_box SET handlers_date = %s, write_uid = %s, write_date = %s WHERE id = %s",
                now,
                self.env.uid,
                now,
                self.id,
            ),
            log_exceptions=False,
        )
        self.invalidate_recordset(fnames, flush=False)
        self.modified(fnames)

    def _lock_for_update(self):
        """Lock the row of ``self`` for this request's writes. A concurrent
        check-in or delivery of the same box waits, then gets a serialization
        failure (not logged: it is expected) and is retried by Odoo, so no
        update and no device is lost."""
        self.ensure_one()
        self.env.cr.execute("SELECT id FROM iot_box WHERE id = %s FOR NO KEY UPDATE", [self.id], log_exceptions=False)

    def _get_channel(self):
        """The bus channel of ``self``, answered to its check-in.

        Unguessable and stable: an HMAC of the box's identifier keyed with the
        database secret, so nothing is stored and a subscription is checked
        without reading anything (``_on_bus_subscription``). A box whose
        identifier changes (an 18.0 box moving to 19) gets its new channel at
        that same check-in.
        """
        self.ensure_one()
        return self._channel_for(self.identifier)

    @api.model
    def _channel_for(self, identifier):
        return CHANNEL_PREFIX + odoo_hmac(self.env(su=True), CHANNEL_SCOPE, identifier)

    # ------------------------------------------------------------------
    # Bus subscriptions (the box's websocket, SPEC 3.4)
    # ------------------------------------------------------------------

    @api.model
    def _on_bus_subscription(self, data, remote_addr=None, websocket=None):
        """Record the contact a bus subscription proves, if any.

        ``data`` is the subscription's data as the websocket received it
        (anything at all). It proves a box's contact when it subscribes to the
        channel that box was given, and names the box: ``mac_address`` (18.0)
        or ``identifier`` (19). Anything else changes nothing and costs no
        query. Returns the box whose contact was recorded (empty otherwise,
        also when the write was throttled). ``websocket``, the box's
        connection, is tagged so that its close is recorded
        (``iot_box_liveness``).
        """
        identifier = proven_identity(data, self._channel_for)
        if not identifier:
            return self.browse()
        connection = self._bus_connection_key(websocket, identifier) if websocket is not None else None
        return self._record_bus_contact(identifier, remote_addr, connection=connection)

    @api.model
    def _record_bus_contact(self, identifier, remote_addr=None, connection=None):
        """The box ``identifier`` was seen on the bus now.

        One UPDATE, by the unique identifier, which writes nothing when the
        box was seen less than ``BUS_CONTACT_THROTTLE_MINUTES`` ago from the
        same address (or is archived): a burst of subscriptions costs one write
        per box, but a new connection (``connection``, its key) or the end of a
        disconnection is always written. The address is kept as the box's bus address (the box log
        accepts lines from it). Only a box
        the dashboard shows as offline gets its statuses recomputed and a
        "back online" event.

        A concurrent transaction that changed the same box after this one
        began makes PostgreSQL refuse the UPDATE (repeatable read): the error
        is not logged here, and the websocket's request loop retries the
        subscription with a fresh snapshot, as Odoo does for HTTP requests.
        """
        now = fields.Datetime.now()
        fnames = [
            "last_seen_bus",
            "last_seen",
            "last_contact",
            "is_offline",
            "bus_remote_addr",
            "bus_connection",
            "disconnected_since",
        ]
        self.flush_model(fnames)
        self.env.cr.execute(
            SQL(
                """UPDATE iot_box
                      SET last_seen_bus = %(now)s, last_seen = GREATEST(last_contact, %(now)s),
                          bus_remote_addr = COALESCE(%(addr)s, bus_remote_addr),
                          bus_connection = COALESCE(%(connection)s, bus_connection),
                          disconnected_since = NULL
                    WHERE identifier = %(identifier)s
                      AND active
                      AND (last_seen_bus IS NULL OR last_seen_bus < %(throttle)s
                           OR bus_remote_addr IS DISTINCT FROM COALESCE(%(addr)s, bus_remote_addr)
                           OR disconnected_since IS NOT NULL
                           OR bus_connection IS DISTINCT FROM COALESCE(%(connection)s, bus_connection))
                RETURNING id, is_offline""",
                now=now,
                identifier=identifier,
                addr=remote_addr,
                connection=connection,
                throttle=now - timedelta(minutes=BUS_CONTACT_THROTTLE_MINUTES),
            ),
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        if not row:
            return self.browse()
        box = self.browse(row[0])
        box.invalidate_recordset(
            ["last_seen_bus", "last_seen", "bus_remote_addr", "bus_connection", "disconnected_since"], flush=False
        )
        if row[1]:
            box._refresh_update_status()
            self.env["iot.box.event"].sudo()._record(
                "back_online", box, detail="seen on the bus", remote_addr=remote_addr
            )
            _logger.info("IoT box %s is back online (bus subscription from %s)", identifier, remote_addr)
        return box

    def _on_setup_accepted(self, request, remote_addr, admitted):
        """Hook called after a check-in of ``self`` was accepted."""
        self.env["iot.box.event"].sudo()._record(
            "admission" if admitted else "checkin",
            self,
            identifier=request.identifier,
            version=request.version,
            detail=f"ip {request.ip or '?'}, {len(request.devices)} devices",
            remote_addr=remote_addr,
        )

    def _on_setup_refused(self, request, remote_addr, reason):
        """Hook called after a check-in was refused (``self`` may be empty)."""
        self.env["iot.box.event"].sudo()._record(
            "refusal",
            self,
            identifier=request.identifier,
            version=request.version,
            detail=f"check-in: {reason}",
            remote_addr=remote_addr,
        )

    def _sync_devices(self, devices):
        """Make the devices of ``self`` what the box reports: new ones created,
        known ones updated and connected, the others disconnected."""
        self.ensure_one()
        Device = self.env["iot.device"]
        known = {device.identifier: device for device in self.with_context(active_test=False).device_ids}
        to_create = []
        for identifier, values in devices.items():
            vals = {**values, "connected": True}
            device = known.pop(identifier, None)
            if device is None:
                to_create.append({**vals, "box_id": self.id, "identifier": identifier})
                continue
            changed = {key: value for key, value in vals.items() if (device[key] or "") != value}
            if changed:
                device.write(changed)
        if to_create:
            Device.create(to_create)
        gone = Device.browse([device.id for device in known.values() if device.connected])
        if gone:
            gone.write({"connected": False})
