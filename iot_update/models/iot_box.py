# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import hashlib
import logging
import secrets
from contextlib import closing
from datetime import timedelta

import psycopg2.errors

from odoo import api, fields, models, release
from odoo.tools import SQL, consteq, format_datetime
from odoo.tools import hmac as odoo_hmac

from ..tools.bundle import variant_for
from ..tools.bus_subscription import CHANNEL_PREFIX, proven_identity
from ..tools.settings import positive_int
from ..tools.status import evaluate, image_older, minimum_image
from ..tools.versions import BoxVersion, image_key, parse_version

_logger = logging.getLogger(__name__)

PAIRING_TOKEN_PARAM = "iot_token"  # noqa: S105 - the parameter's key, not a secret
OFFLINE_DELAY_PARAM = "iot_update.offline_delay_hours"
#: A box that is on re-subscribes to the bus at least every ~1.5 h (SPEC 3.4):
#: 3 h never flags it, and flags a dead box within hours.
DEFAULT_OFFLINE_DELAY_HOURS = 3
#: The default of the first releases, which an upgrade replaces (see migrations/).
OLD_DEFAULT_OFFLINE_DELAY_HOURS = 24
#: A box's bus subscriptions are recorded at most once within this delay: a box
#: that reconnects in a loop, or a fleet reconnecting after a server restart,
#: costs one write per box, not one per subscription.
BUS_CONTACT_THROTTLE_MINUTES = 10
#: Scope of the HMAC (keyed with the database secret) that names box channels.
CHANNEL_SCOPE = "iot_update.box_channel"
SERVER_SERIES_PARAM = "iot_update.server_series"

#: Fields read with the box when a request finds it (see ``_find_box``).
FIND_FIELDS = [
    "identifier",
    "mac",
    "name",
    "ip",
    "version",
    "platform",
    "active",
    "token_hash",
    "last_contact",
    "last_seen_bus",
    "drivers_auto_update",
    "canary",
    "handlers_digest",
    "company_id",
]

STATUS_FIELDS = (
    "needs_image_upgrade",
    "image_upgrade_available",
    "code_update_pending",
    "handlers_outdated",
    "is_offline",
    "update_status",
)

#: Kanban colour index of each status (the dashboard's cards).
STATUS_COLORS = {"offline": 0, "image_required": 1, "code_pending": 2, "handlers_outdated": 4, "up_to_date": 10}


def _token_bytes(token):
    # surrogatepass: whatever a request holds can be compared and hashed.
    return token.encode("utf-8", "surrogatepass")


def hash_token(token):
    return hashlib.sha256(_token_bytes(token)).hexdigest()


def same_token(given, expected):
    """Constant-time comparison of two tokens of any characters (``consteq``
    refuses ``str`` holding non-ASCII characters: bytes are compared)."""
    return consteq(_token_bytes(given), _token_bytes(expected))


class IotBox(models.Model):
    _name = "iot.box"
    _description = "IoT Box"
    _order = "name, id"

    name = fields.Char(required=True)
    identifier = fields.Char(
        required=True,
        readonly=True,
        copy=False,
        help="Identifier the box sends: its MAC address (18.0) or its serial number (19).",
    )
    mac = fields.Char(string="MAC Address", readonly=True, copy=False, index="btree_not_null")
    ip = fields.Char(string="IP Address", readonly=True)
    homepage_url = fields.Char(
        string="Box Homepage", compute="_compute_homepage_url", help="Homepage of the box, as reached from here."
    )
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company, index=True)
    device_ids = fields.One2many("iot.device", "box_id", string="Devices")
    device_count = fields.Integer(compute="_compute_device_count")
    event_ids = fields.One2many("iot.box.event", "box_id", string="History")
    token_hash = fields.Char(readonly=True, copy=False, groups="base.group_system")
    last_contact = fields.Datetime(
        string="Last Check-in", readonly=True, copy=False, help="Last check-in of the box (POST /iot/setup)."
    )
    last_seen_bus = fields.Datetime(
        string="Last Seen on the Bus",
        readonly=True,
        copy=False,
        help="Last subscription of the box to its own channel of the bus websocket, which a box that is on "
        "renews at least every hour and a half (recorded at most every 10 minutes).",
    )
    last_seen = fields.Datetime(
        compute="_compute_last_seen",
        store=True,
        index=True,
        copy=False,
        help="Last contact of any kind: the later of the last check-in and the last time seen on the bus.",
    )
    bus_channel = fields.Char(
        compute="_compute_bus_channel",
        groups="base.group_system",
        help="Bus channel the box subscribes to, given at its check-in (derived from the database secret).",
    )
    drivers_auto_update = fields.Boolean(
        string="Automatic Drivers update",
        default=True,
        help="When off, the box keeps its drivers when it starts; "
        "the 'Load handlers' button of its homepage still downloads them.",
    )

    canary = fields.Boolean(
        help="A canary box gets a held drivers bundle (a new one held back from the other boxes) "
        "before it is released to all.",
    )

    # Versions, read from what the box sends.
    version = fields.Char(readonly=True, copy=False, help="Version string the box sent, as it sent it.")
    platform = fields.Selection(
        [
            ("linux", "IoT Box (Linux)"),
            ("windows", "Windows virtual IoT"),
            ("test", "Test machine"),
            ("unknown", "Unknown"),
        ],
        compute="_compute_version_parts",
        store=True,
    )
    image_version = fields.Char(compute="_compute_version_parts", store=True, help="Image of the SD card, YY.MM.")
    code_version = fields.Char(
        string="Code Series", compute="_compute_version_parts", store=True, help="Odoo release the box runs."
    )
    code_commit = fields.Char(compute="_compute_version_parts", store=True)

    # Handlers the box last received.
    handlers_digest = fields.Char(string="Last Bundle", readonly=True, copy=False)
    handlers_date = fields.Datetime(string="Last Bundle Date", readonly=True, copy=False)
    handlers_current_digest = fields.Char(
        string="Due Bundle",
        compute="_compute_handlers_current_digest",
        help="Digest of the bundle the box gets now: the held bundle of its platform for a canary box "
        "while one is held, else the current one.",
    )
    handlers_bundle_id = fields.Many2one(
        "iot.handlers.bundle",
        string="Drivers Bundle",
        compute="_compute_handlers_bundle",
        help="The drivers bundle the box last received.",
    )
    handlers_summary = fields.Char(
        string="Drivers",
        compute="_compute_handlers_bundle",
        help="Whether the box holds the drivers bundle it is due, or how far behind it is.",
    )

    # What the box needs: stored so that the dashboard filters and counts.
    needs_image_upgrade = fields.Boolean(compute="_compute_update_status", store=True)
    image_upgrade_available = fields.Boolean(compute="_compute_update_status", store=True)
    code_update_pending = fields.Boolean(compute="_compute_update_status", store=True)
    handlers_outdated = fields.Boolean(compute="_compute_update_status", store=True)
    is_offline = fields.Boolean(string="Offline", compute="_compute_update_status", store=True)
    update_status = fields.Selection(
        [
            ("offline", "Offline"),
            ("image_required", "Image upgrade required"),
            ("code_pending", "Code update pending"),
            ("handlers_outdated", "Handlers outdated"),
            ("up_to_date", "Up to date"),
        ],
        string="Status",
        compute="_compute_update_status",
        store=True,
        index=True,
        group_expand="_group_expand_update_status",
    )
    update_advice = fields.Char(string="What to do", compute="_compute_update_advice")
    status_color = fields.Integer(compute="_compute_status_color", help="Colour of the box's card on the dashboard.")

    _sql_constraints = [
        # Also the index the boxes are found by.
        ("identifier_unique", "unique(identifier)", "Another box already has this identifier."),
    ]

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------

    @api.depends("ip")
    def _compute_homepage_url(self):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url") or ""
        secure = base_url.startswith("https://")
        for box in self:
            if not box.ip:
                box.homepage_url = False
            elif secure:
                box.homepage_url = f"https://{box.ip}"
            else:
                box.homepage_url = f"http://{box.ip}:8069"

    @api.depends("platform", "canary")
    def _compute_handlers_current_digest(self):
        Bundle = self.env["iot.handlers.bundle"].sudo()
        digests = Bundle._current_digests() if self else {}
        held = Bundle._held_digests() if self else {}
        for box in self:
            variant = variant_for(box.platform)
            box.handlers_current_digest = (box.canary and held.get(variant)) or digests.get(variant)

    @api.depends("platform", "canary", "handlers_digest", "handlers_date")
    @api.depends_context("lang", "tz")
    def _compute_handlers_bundle(self):
        digests = {digest for digest in self.mapped("handlers_digest") if digest}
        digests |= {digest for digest in self.mapped("handlers_current_digest") if digest}
        bundles = self.env["iot.handlers.bundle"].sudo().search([("digest", "in", list(digests))])
        by_key = {(bundle.variant, bundle.digest): bundle for bundle in bundles}
        for box in self:
            variant = variant_for(box.platform)
            held = by_key.get((variant, box.handlers_digest), self.env["iot.handlers.bundle"])
            box.handlers_bundle_id = held
            due = by_key.get((variant, box.handlers_current_digest))
            box.handlers_summary = box._handlers_summary(held, due)

    def _handlers_summary(self, held, due):
        """The box's bundle in words: "Current", "N changes behind, received
        <date>", or what else it holds."""
        self.ensure_one()
        if not self.handlers_digest:
            return self.env._("No drivers received yet")
        if self.handlers_digest == self.handlers_current_digest:
            if held.state == "held":
                return self.env._("Trying the held bundle (canary)")
            return self.env._("Current")
        date = format_datetime(self.env, self.handlers_date, dt_format="short") if self.handlers_date else "?"
        if not held:
            return self.env._("Older bundle (unknown), received %(date)s", date=date)
        behind, bundle = 0, due
        while bundle and behind < 100:
            if bundle == held:
                if behind == 1:
                    return self.env._("1 change behind, received %(date)s", date=date)
                return self.env._("%(count)s changes behind, received %(date)s", count=behind, date=date)
            bundle, behind = bundle.previous_id, behind + 1
        if held.state == "withdrawn":
            return self.env._("Withdrawn bundle, received %(date)s", date=date)
        if held.state == "held":
            return self.env._("Held bundle (not released), received %(date)s", date=date)
        return self.env._("Another bundle, received %(date)s", date=date)

    @api.depends("last_contact", "last_seen_bus")
    def _compute_last_seen(self):
        for box in self:
            dates = [date for date in (box.last_contact, box.last_seen_bus) if date]
            box.last_seen = max(dates, default=False)

    @api.depends("identifier")
    def _compute_bus_channel(self):
        for box in self:
            box.bus_channel = box._get_channel() if box.identifier else False

    def _compute_device_count(self):
        counts = dict(self.env["iot.device"]._read_group([("box_id", "in", self.ids)], ["box_id"], ["__count"]))
        for box in self:
            box.device_count = counts.get(box, 0)

    @api.depends("version")
    def _compute_version_parts(self):
        for box in self:
            parsed = parse_version(box.version)
            box.platform = parsed.platform
            box.image_version = parsed.image
            box.code_version = parsed.series
            box.code_commit = parsed.commit

    @api.depends("platform", "image_version", "code_version", "last_seen", "handlers_digest", "canary")
    def _compute_update_status(self):
        facts = self._update_facts()
        for box in self:
            result = evaluate(
                box._parsed_version(),
                server_series=facts["server_series"],
                min_image=facts["min_image"],
                latest_image=facts["latest_image"],
                handlers_current=box._handlers_current(facts),
                offline=not box.last_seen or box.last_seen < facts["offline_before"],
            )
            box.update(result._asdict())
            box.update_status = result.status

    @api.depends(
        "update_status", "image_upgrade_available", "platform", "code_version", "image_version", "drivers_auto_update"
    )
    @api.depends_context("lang")
    def _compute_update_advice(self):
        facts = self._update_facts(handlers=False) if self else {}
        for box in self:
            box.update_advice = box._update_advice(facts)

    @api.depends("update_status")
    def _compute_status_color(self):
        for box in self:
            box.status_color = STATUS_COLORS.get(box.update_status, 0)

    def _group_expand_update_status(self, states, domain):
        return [key for key, __ in self._fields["update_status"].selection]

    # ------------------------------------------------------------------
    # Server facts the statuses depend on
    # ------------------------------------------------------------------

    @api.model
    def _get_server_series(self):
        return release.serie

    @api.model
    def _get_offline_delay_hours(self):
        return positive_int(
            self.env["ir.config_parameter"].sudo().get_param(OFFLINE_DELAY_PARAM), DEFAULT_OFFLINE_DELAY_HOURS
        )

    @api.model
    def _get_latest_image(self):
        """Newest published image known to the server ("" when none is known).

        The image the feed marks as latest (what the box software itself
        offers); when no feed read has named one yet, the newest image known.
        """
        releases = self.env["iot.image.release"].sudo().search([], order="is_latest desc, image_version desc")
        if releases[:1].is_latest:
            return releases[0].image_version
        return max((image for image in releases.mapped("image_version") if image_key(image)), key=image_key, default="")

    @api.model
    def _update_facts(self, handlers=True):
        """Everything outside a box that its status depends on, read once.

        ``handlers=False`` leaves out the current handlers digests, which the
        advice line does not need (reading them may build a bundle).
        """
        server_series = self._get_server_series()
        offline_delay = self._get_offline_delay_hours()
        facts = {
            "server_series": server_series,
            "min_image": minimum_image(server_series, self.env["iot.image.requirement"].sudo()._get_table()),
            "latest_image": self._get_latest_image(),
            "offline_delay": offline_delay,
            "offline_before": fields.Datetime.now() - timedelta(hours=offline_delay),
        }
        if handlers:
            facts["handlers_digests"] = {
                **self.env["iot.handlers.bundle"]._current_digests(),
                # The bundle a handlers request serves before its digest is recorded.
                **self.env.context.get("iot_update_handlers_digests", {}),
            }
            facts["held_digests"] = self.env["iot.handlers.bundle"]._held_digests()
        return facts

    def _parsed_version(self):
        """The box's version as ``_compute_version_parts`` stored it."""
        self.ensure_one()
        return BoxVersion(
            self.version or "",
            self.platform or "unknown",
            self.image_version or "",
            self.code_version or "",
            self.code_commit or "",
            "",
        )

    def _handlers_current(self, facts):
        """True when the box holds the handlers bundle it is due: the held
        bundle of its platform for a canary box while one is held, else the
        current one."""
        self.ensure_one()
        variant = variant_for(self.platform)
        due = facts["handlers_digests"].get(variant)
        if self.canary and variant not in self.env.context.get("iot_update_handlers_digests", {}):
            due = facts["held_digests"].get(variant) or due
        return bool(self.handlers_digest) and self.handlers_digest == due

    def _update_advice(self, facts):
        self.ensure_one()
        status = self.update_status
        if status == "offline":
            return self.env._(
                "No check-in and not seen on the bus for more than %(hours)s hours: check that the box is "
                "powered on and reaches this database (its websocket included).",
                hours=facts["offline_delay"],
            )
        if status == "image_required":
            if image_older(facts["min_image"], facts["latest_image"]):
                return self.env._(
                    "Reflash the SD card with image %(minimum)s or newer (the latest is %(latest)s).",
                    minimum=facts["min_image"],
                    latest=facts["latest_image"],
                )
            return self.env._("Reflash the SD card with image %(minimum)s or newer.", minimum=facts["min_image"])
        if status == "code_pending":
            if self.platform == "windows":
                return self.env._("Reinstall Windows IoT for %(series)s.", series=facts["server_series"])
            return self.env._("Restart the box to follow %(series)s.", series=facts["server_series"])
        if status == "handlers_outdated":
            if not self.drivers_auto_update:
                return self.env._(
                    "Automatic Drivers update is off: press 'Load handlers' on the box homepage "
                    "to get the current drivers."
                )
            return self.env._("Restart the box, or press 'Load handlers' on its homepage, to get the current drivers.")
        if self.platform == "unknown":
            return self.env._("The box sent no readable version: restart it so that it checks in again.")
        if self.image_upgrade_available:
            return self.env._("Up to date. Image %(image)s is available.", image=facts["latest_image"])
        return self.env._("Up to date.")

    # ------------------------------------------------------------------
    # Keeping the stored statuses current
    # ------------------------------------------------------------------

    def _refresh_update_status(self):
        """Recompute the stored statuses of ``self`` now, in batched writes."""
        for fname in STATUS_FIELDS:
            self.env.add_to_compute(self._fields[fname], self)
        self._recompute_recordset(STATUS_FIELDS)
        # A forced recomputation notifies nothing: drop what depends on the
        # statuses (the advice line, the card colour) so it is read afresh.
        self.modified(STATUS_FIELDS)

    @api.model
    def _refresh_all_update_status(self):
        boxes = self.with_context(active_test=False).search([])
        boxes._refresh_update_status()
        self.env["ir.config_parameter"].sudo().set_param(SERVER_SERIES_PARAM, self._get_server_series())
        return boxes

    @api.model
    def _cron_refresh_update_status(self):
        """Keep ``is_offline`` current; recompute everything after a series change."""
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(SERVER_SERIES_PARAM) != self._get_server_series():
            self._refresh_all_update_status()
            return
        limit = fields.Datetime.now() - timedelta(hours=self._get_offline_delay_hours())
        self.with_context(active_test=False).search(
            [
                "|",
                "&",
                ("is_offline", "=", False),
                "|",
                ("last_seen", "=", False),
                ("last_seen", "<", limit),
                "&",
                ("is_offline", "=", True),
                ("last_seen", ">=", limit),
            ]
        )._refresh_update_status()

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
        archived ones included (README, "Which box a request speaks for"):

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
        if request.name:
            vals["name"] = request.name
        if request.mac:
            vals["mac"] = request.mac
        token_hash = hash_token(token)
        if box.token_hash != token_hash:
            # Admitted with the current pairing token: remember it from now on.
            vals["token_hash"] = token_hash
        box.write({key: value for key, value in vals.items() if box[key] != value or key == "last_contact"})
        box._sync_devices(request.devices)
        box._on_setup_accepted(request, remote_addr, admitted=False)
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
    def _on_bus_subscription(self, data, remote_addr=None):
        """Record the contact a bus subscription proves, if any.

        ``data`` is the subscription's data as the websocket received it
        (anything at all). It proves a box's contact when it subscribes to the
        channel that box was given, and names the box: ``mac_address`` (18.0)
        or ``identifier`` (19). Anything else changes nothing and costs no
        query. Returns the box whose contact was recorded (empty otherwise,
        also when the write was throttled).
        """
        identifier = proven_identity(data, self._channel_for)
        if not identifier:
            return self.browse()
        return self._record_bus_contact(identifier, remote_addr)

    @api.model
    def _record_bus_contact(self, identifier, remote_addr=None):
        """The box ``identifier`` was seen on the bus now.

        One UPDATE, by the unique identifier, which writes nothing when the
        box was seen less than ``BUS_CONTACT_THROTTLE_MINUTES`` ago (or is
        archived): a burst of subscriptions costs one write per box. Only a box
        the dashboard shows as offline gets its statuses recomputed and a
        "back online" event.

        A concurrent transaction that changed the same box after this one
        began makes PostgreSQL refuse the UPDATE (repeatable read): the error
        is not logged here, and the websocket's request loop retries the
        subscription with a fresh snapshot, as Odoo does for HTTP requests.
        """
        now = fields.Datetime.now()
        fnames = ["last_seen_bus", "last_seen", "last_contact", "is_offline"]
        self.flush_model(fnames)
        self.env.cr.execute(
            SQL(
                """UPDATE iot_box
                      SET last_seen_bus = %(now)s, last_seen = GREATEST(last_contact, %(now)s)
                    WHERE identifier = %(identifier)s
                      AND active
                      AND (last_seen_bus IS NULL OR last_seen_bus < %(throttle)s)
                RETURNING id, is_offline""",
                now=now,
                identifier=identifier,
                throttle=now - timedelta(minutes=BUS_CONTACT_THROTTLE_MINUTES),
            ),
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        if not row:
            return self.browse()
        box = self.browse(row[0])
        box.invalidate_recordset(["last_seen_bus", "last_seen"], flush=False)
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
