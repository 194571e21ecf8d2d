# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import hashlib
from datetime import timedelta

from odoo import api, fields, models, release
from odoo.tools import consteq, format_datetime

from ..tools.bundle import variant_for
from ..tools.settings import positive_int
from ..tools.status import evaluate, image_older, minimum_image
from ..tools.versions import BoxVersion, image_key, parse_version

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
    "disconnected_since",
    "checkin_remote_addr",
    "is_offline",
    "drivers_auto_update",
    "canary",
    "rollout_due",
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
    checkin_remote_addr = fields.Char(
        string="Check-in Address",
        readonly=True,
        copy=False,
        help="Address the last accepted check-in came from, as this server sees it (behind a proxy with "
        "--proxy-mode: the address the proxy received it from).",
    )
    bus_remote_addr = fields.Char(
        string="Bus Address",
        readonly=True,
        copy=False,
        help="Address of the box's last recorded bus subscription, as this server sees it.",
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
        help="A canary box gets a held drivers bundle (a new one held back from the other boxes) first: "
        "it is the first wave of every roll-out.",
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
        help="Digest of the bundle the box gets now: the held bundle of its platform while the box is in "
        "an open wave of its roll-out, else the current one.",
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

    @api.depends("platform", "rollout_due")
    def _compute_handlers_current_digest(self):
        Bundle = self.env["iot.handlers.bundle"].sudo()
        digests = Bundle._current_digests() if self else {}
        held = Bundle._held_digests() if self else {}
        for box in self:
            variant = variant_for(box.platform)
            box.handlers_current_digest = (box.rollout_due and held.get(variant)) or digests.get(variant)

    @api.depends("platform", "rollout_due", "handlers_digest", "handlers_date")
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
                return self.env._("Trying the held bundle (roll-out)")
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

    @api.depends(
        "platform", "image_version", "code_version", "last_seen", "handlers_digest", "rollout_due", "disconnected_since"
    )
    def _compute_update_status(self):
        facts = self._update_facts()
        for box in self:
            result = evaluate(
                box._parsed_version(),
                server_series=facts["server_series"],
                min_image=facts["min_image"],
                latest_image=facts["latest_image"],
                handlers_current=box._handlers_current(facts),
                offline=box._offline_now(facts),
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

    def _offline_now(self, facts):
        """True when the box counts as offline (the delay since its last
        contact; ``iot_box_liveness`` adds its disconnection)."""
        self.ensure_one()
        return not self.last_seen or self.last_seen < facts["offline_before"]

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
        bundle of its platform while it is in an open wave of its roll-out
        (``rollout_due``), else the current one."""
        self.ensure_one()
        variant = variant_for(self.platform)
        due = facts["handlers_digests"].get(variant)
        if self.rollout_due and variant not in self.env.context.get("iot_update_handlers_digests", {}):
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
                "&",
                ("is_offline", "=", True),
                ("last_seen", ">=", limit),
                # Offline for its disconnection: the liveness refresh decides.
                ("disconnected_since", "=", False),
            ]
        )._refresh_update_status()
