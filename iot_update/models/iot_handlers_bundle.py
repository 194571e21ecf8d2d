# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import base64
import hashlib
import io
import logging
import os
import threading
import zipfile
from collections import OrderedDict
from typing import NamedTuple

import psycopg2.errors

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.modules.module import adapt_version, get_manifest, get_module_path
from odoo.tools import SQL, format_datetime, mute_logger

from ..tools.bundle import VARIANTS, Bundle, BundleCache, build_bundle, scan, variant_for
from ..tools.handlers_request import etag_matches

_logger = logging.getLogger(__name__)

#: Modules holding the standard drivers: never installed on a server, found by path.
STANDARD_DRIVER_MODULES = ("hw_drivers", "iot_drivers")
#: System parameter holding the current digest of a bundle variant: the
#: bundle every box of the variant is due, canaries aside.
DIGEST_PARAM = "iot_update.handlers_digest.%s"
#: System parameter holding the digest of the held bundle of a variant, the
#: one the boxes of its roll-out's open waves are due (absent or empty when none is held).
HELD_PARAM = "iot_update.handlers_held.%s"
#: System parameter holding the digest of the last bundle of a variant built
#: from the handler folders and recorded (after a roll back, not the current one).
NOTICED_PARAM = "iot_update.handlers_noticed.%s"
#: The log line of a recorded bundle change (the fleet benchmark counts them).
NOTICED_LOG = "IoT handlers bundle %s %s noticed (%s): handlers flag or status changed on %s boxes"
#: System parameter holding the fingerprint of the handler folders the digests were built from.
FINGERPRINT_PARAM = "iot_update.handlers_fingerprint"
#: System parameter: "True" when a new bundle is held back and rolled out in waves.
HOLD_PARAM = "iot_update.hold_bundles"
#: Box platforms served by each variant (False: a box whose version was never read).
VARIANT_PLATFORMS = {"linux": ["linux"], "windows": ["windows"], "all": ["test", "unknown", False]}
#: States of a bundle a box may be served.
SERVED_STATES = ("held", "current")

#: System parameter holding the fingerprint of the last handler folders found to
#: differ from the module versions the database records (their warning is logged once).
OUTVOTED_PARAM = "iot_update.handlers_outvoted"
#: The warning of a server whose handler modules are not the versions the database records.
OUTVOTED_LOG = (
    "IoT handlers bundle: this server's handler modules are not the versions the database records (%s): "
    "it serves the recorded bundles' stored bytes and records none of its own until it runs the recorded versions"
)

#: Bundles of this process, shared by its threads and databases.
bundle_cache = BundleCache()
#: ``{database: ((registry id, sequence), {module: (version here, version recorded)})}``:
#: the handler modules whose files this process holds in another version than the
#: database records, worked out once per registry.
_versions_differ = {}
#: ``(database, variant, digest)`` of the changes this process asked the cron to record.
_triggered = set()
#: Bundles read from their records (a held or previous one the folders no
#: longer build), by ``(database, variant, digest)``: immutable, hence kept.
_stored_bundles = OrderedDict()
_stored_lock = threading.Lock()
STORED_BUNDLES_KEPT = 12


class HandlersAnswer(NamedTuple):
    """What to answer a handlers request: ``kind`` is an ``iot.box.event`` kind."""

    kind: str  # "delivery", "not_modified" or "refusal"
    bundle: Bundle | None
    reason: str = ""


def variant_domain(variant):
    """Domain of the boxes a bundle of ``variant`` is for."""
    platforms = VARIANT_PLATFORMS[variant]
    if False in platforms:
        return ["|", ("platform", "in", [platform for platform in platforms if platform]), ("platform", "=", False)]
    return [("platform", "in", platforms)]


def zip_files(data):
    """``{entry: (sha256, size)}`` of the files of the zip ``data``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {}
        for info in archive.infolist():
            content = archive.read(info)
            files[info.filename] = (hashlib.sha256(content).hexdigest(), len(content))
        return files


class IotHandlersBundle(models.Model):
    """A drivers bundle the server built from the handler folders: one
    record per bundle and platform variant, with its files, what changed since
    the previous one, its bytes (kept while a box may still be served them)
    and its place in the roll-out.

    The model also holds the service methods of the handlers route
    (``_serve_handlers``) and of noticing a bundle change.
    """

    _name = "iot.handlers.bundle"
    _description = "IoT Drivers Bundle"
    _order = "noticed_date desc, id desc"
    _rec_names_search = ["digest"]

    digest = fields.Char(required=True, readonly=True, index=True, help="SHA-256 of the bundle: its ETag.")
    variant = fields.Selection(
        [("linux", "IoT Box (Linux)"), ("windows", "Windows virtual IoT"), ("all", "Other boxes")],
        string="Platform",
        required=True,
        readonly=True,
        help="Boxes the bundle is built for: Linux boxes, Windows virtual IoT, or the others "
        "(test machines, boxes whose version is unknown), which get every file.",
    )
    state = fields.Selection(
        [
            ("held", "Held (rolling out)"),
            ("current", "Current"),
            ("superseded", "Superseded"),
            ("withdrawn", "Withdrawn"),
        ],
        required=True,
        readonly=True,
        index=True,
        default="current",
        help="Held: only the boxes of the open waves of its roll-out get it (the canaries first). "
        "Current: every other box gets it. Superseded: replaced by a "
        "newer current bundle. Withdrawn: rolled back, or replaced before it was released.",
    )
    previous_id = fields.Many2one(
        "iot.handlers.bundle",
        string="Previous Bundle",
        readonly=True,
        ondelete="set null",
        help="The bundle of the same platform this one followed; what changed is counted from it.",
    )
    noticed_date = fields.Datetime(
        string="Noticed", required=True, readonly=True, default=fields.Datetime.now, index=True
    )
    retired_date = fields.Datetime(string="Retired", readonly=True, help="When the bundle was superseded or withdrawn.")
    first_served_date = fields.Datetime(
        string="First Served",
        compute="_compute_served_dates",
        help="First delivery of the bundle kept in the box history.",
    )
    last_served_date = fields.Datetime(
        string="Last Served",
        compute="_compute_served_dates",
        help="Last delivery (or 'not modified' answer) of the bundle kept in the box history.",
    )
    file_count = fields.Integer(string="Files", readonly=True)
    size = fields.Integer(string="Size (bytes)", readonly=True, help="Size of the zip the boxes download.")
    data = fields.Binary(string="Bundle", attachment=True, readonly=True, help="The zip the boxes download.")
    file_ids = fields.One2many("iot.handlers.bundle.file", "bundle_id", string="Files of the Bundle", readonly=True)
    change_ids = fields.One2many("iot.handlers.bundle.change", "bundle_id", string="Changes", readonly=True)
    change_count = fields.Integer(string="Changed Files", readonly=True)
    box_count = fields.Integer(string="Boxes Holding", compute="_compute_box_counts")
    platform_box_count = fields.Integer(string="Boxes of its Platform", compute="_compute_box_counts")
    rollout_progress = fields.Float(
        string="Roll-out",
        compute="_compute_box_counts",
        help="Share of the boxes of its platform holding the bundle.",
    )
    older_box_count = fields.Integer(string="Boxes on Another Bundle", compute="_compute_box_counts")
    log_ids = fields.One2many(
        "iot.handlers.bundle.log",
        "bundle_id",
        string="Roll-out Log",
        readonly=True,
        help="Who released or rolled back the bundle, and when.",
    )
    older_box_ids = fields.Many2many(
        "iot.box",
        string="Boxes Not Holding It",
        compute="_compute_older_box_ids",
        help="Boxes of its platform that do not hold this bundle (up to 200 are listed).",
    )

    _sql_constraints = [
        ("variant_digest_unique", "unique(variant, digest)", "A bundle is recorded once per platform."),
    ]

    def init(self):
        result = super().init()
        # One current and at most one held bundle per platform.
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS iot_handlers_bundle_served_unique
                   ON iot_handlers_bundle (variant, state) WHERE state IN ('current', 'held')"""
        )
        return result

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------

    @api.depends("variant", "noticed_date", "digest")
    def _compute_display_name(self):
        labels = dict(self._fields["variant"]._description_selection(self.env))
        for bundle in self:
            if not bundle.digest:
                bundle.display_name = False
                continue
            bundle.display_name = self.env._(
                "%(platform)s, %(date)s (%(digest)s)",
                platform=labels.get(bundle.variant, bundle.variant),
                date=format_datetime(self.env, bundle.noticed_date, dt_format="short"),
                digest=bundle.digest[:8],
            )

    def _compute_served_dates(self):
        Event = self.env["iot.box.event"].sudo()
        rows = Event._read_group(
            [("bundle_digest", "in", [digest for digest in self.mapped("digest") if digest])],
            ["bundle_digest"],
            ["date:min", "date:max"],
        )
        dates = {digest: (first, last) for digest, first, last in rows}
        for bundle in self:
            bundle.first_served_date, bundle.last_served_date = dates.get(bundle.digest, (False, False))

    def _compute_box_counts(self):
        Box = self.env["iot.box"]
        # One count of the boxes by bundle per platform variant shown.
        counts = {
            variant: dict(Box._read_group(variant_domain(variant), ["handlers_digest"], ["__count"]))
            for variant in set(self.mapped("variant"))
        }
        for bundle in self:
            by_digest = counts.get(bundle.variant, {})
            total = sum(by_digest.values())
            holding = by_digest.get(bundle.digest, 0) if bundle.digest else 0
            bundle.box_count = holding
            bundle.platform_box_count = total
            bundle.rollout_progress = 100.0 * holding / total if total else 0.0
            bundle.older_box_count = total - holding

    def _compute_older_box_ids(self):
        for bundle in self:
            bundle.older_box_ids = (
                self.env["iot.box"].search(bundle._older_boxes_domain(), limit=200) if bundle.digest else False
            )

    def _older_boxes_domain(self):
        self.ensure_one()
        return [*variant_domain(self.variant), ("handlers_digest", "!=", self.digest)]

    # ------------------------------------------------------------------
    # Actions (IoT administrators)
    # ------------------------------------------------------------------

    def _check_iot_admin(self):
        if not self.env.is_superuser() and not self.env.user.has_group("iot_update.group_iot_admin"):
            raise AccessError(self.env._("Only IoT administrators can release or roll back a drivers bundle."))

    def action_release(self):
        """Release to all: the held bundle becomes the current one of its
        platform, the current one is superseded; the fleet is flagged once."""
        self._check_iot_admin()
        self.ensure_one()
        bundle = self.sudo()
        if bundle.state != "held":
            raise UserError(self.env._("Only a held bundle can be released."))
        bundle._lock_variant(bundle.variant)
        current = bundle._variant_bundle(bundle.variant, "current")
        current._retire("superseded")
        vals = {"state": "current"}
        if current and bundle.previous_id != current:
            vals["previous_id"] = current.id
        bundle.write(vals)
        if "previous_id" in vals:
            bundle._record_changes()
        boxes = bundle._apply_rollout(bundle.variant)
        self.env["iot.handlers.bundle.log"].sudo()._log("released", bundle, replaced=current, box_count=len(boxes))
        _logger.info(
            "IoT drivers bundle %s %s released to all by user %s: %s boxes flagged",
            bundle.variant,
            bundle.digest,
            self.env.uid,
            len(boxes),
        )
        return True

    def action_roll_back(self):
        """Roll back: the current bundle is withdrawn and its previous one is
        current again, served from its stored bytes."""
        self._check_iot_admin()
        self.ensure_one()
        bundle = self.sudo()
        if bundle.state != "current":
            raise UserError(self.env._("Only the current bundle can be rolled back."))
        previous = bundle.previous_id
        if not previous or not previous.data:
            raise UserError(self.env._("This bundle has no previous bundle to return to."))
        bundle._lock_variant(bundle.variant)
        bundle._retire("withdrawn")
        previous.write({"state": "current", "retired_date": False})
        boxes = bundle._apply_rollout(bundle.variant)
        Log = self.env["iot.handlers.bundle.log"].sudo()
        Log._log("rolled_back", bundle, replaced=previous, box_count=len(boxes))
        Log._log("restored", previous, replaced=bundle)
        _logger.info(
            "IoT drivers bundle %s %s rolled back to %s by user %s: %s boxes flagged",
            bundle.variant,
            bundle.digest,
            previous.digest,
            self.env.uid,
            len(boxes),
        )
        return True

    def action_view_older_boxes(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Boxes on another bundle"),
            "res_model": "iot.box",
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": self._older_boxes_domain(),
            "context": {"create": False},
        }

    def action_view_holding_boxes(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Boxes holding this bundle"),
            "res_model": "iot.box",
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": [*variant_domain(self.variant), ("handlers_digest", "=", self.digest)],
            "context": {"create": False},
        }

    # ------------------------------------------------------------------
    # The roll-out: states, parameters, flags
    # ------------------------------------------------------------------

    @api.model
    def _variant_bundle(self, variant, state):
        return self.sudo().search([("variant", "=", variant), ("state", "=", state)], limit=1)

    @api.model
    def _lock_variant(self, variant):
        """Serialize the changes of a variant's roll-out (a release, a roll
        back and a noticed change at once)."""
        self.env.cr.execute(
            "SELECT id FROM iot_handlers_bundle WHERE variant = %s AND state IN %s FOR UPDATE",
            [variant, SERVED_STATES],
        )

    def _retire(self, state):
        if self:
            self.write({"state": state, "retired_date": fields.Datetime.now()})
            # Before another bundle takes its state (one current and one held per platform).
            self.flush_recordset()

    @api.model
    def _hold_enabled(self):
        return self.env["ir.config_parameter"].sudo().get_param(HOLD_PARAM) == "True"

    @api.model
    def _apply_rollout(self, variant):
        """Record the current and held digests of ``variant`` in the system
        parameters (read by every worker at no cost) and flag its boxes."""
        current = self._variant_bundle(variant, "current")
        held = self._variant_bundle(variant, "held")
        params = self.env["ir.config_parameter"].sudo()
        if current:
            params.set_param(DIGEST_PARAM % variant, current.digest)
        params.set_param(HELD_PARAM % variant, held.digest or False)
        self.env["iot.box"].invalidate_model()
        return self._flag_handlers(variant, current.digest or params.get_param(DIGEST_PARAM % variant), held.digest)

    @api.model
    def _due_digests(self, variant):
        """``(current, held)`` digests of ``variant`` (held: None when none)."""
        params = self.env["ir.config_parameter"].sudo()
        return params.get_param(DIGEST_PARAM % variant), params.get_param(HELD_PARAM % variant) or None

    # ------------------------------------------------------------------
    # The bundle
    # ------------------------------------------------------------------

    @api.model
    def _handler_roots(self):
        """The ``iot_handlers`` folders the bundle is made of: the standard
        drivers' first, then those of the installed modules by name (a later
        file of the same name replaces an earlier one)."""
        installed = sorted(set(self.env.registry._init_modules) - set(STANDARD_DRIVER_MODULES))
        roots = []
        for module in (*STANDARD_DRIVER_MODULES, *installed):
            path = get_module_path(module, display_warning=False)
            root = path and os.path.join(path, "iot_handlers")
            if root and os.path.isdir(root):
                roots.append(root)
        return roots

    @api.model
    def _differing_versions(self):
        """``{module: (version of its files here, version the database records)}``
        of the installed modules holding handler files whose manifest on this
        server is not the version recorded in the database.

        Several servers on one database may hold different handler files
        during a rolling deploy. The files that win are those of the servers
        running the module versions the database records: a deploy records
        them when it upgrades the modules (``-u``), so the upgraded code wins
        from then on. A server whose versions differ records no bundle of its
        own and serves the recorded ones. Worked out once per registry (an
        upgrade run elsewhere makes every server load a new one).
        """
        registry = self.env.registry
        key = (id(registry), registry.registry_sequence)
        known = _versions_differ.get(self.env.cr.dbname)
        if known and known[0] == key:
            return known[1]
        modules = [os.path.basename(os.path.dirname(os.path.normpath(root))) for root in self._handler_roots()]
        modules = [module for module in modules if module not in STANDARD_DRIVER_MODULES]
        differ = {}
        if modules:
            self.env.cr.execute(
                "SELECT name, latest_version FROM ir_module_module WHERE name IN %s AND state = 'installed'",
                [tuple(modules)],
            )
            for name, recorded in self.env.cr.fetchall():
                here = adapt_version(get_manifest(name).get("version") or "1.0")
                if recorded and here != recorded:
                    differ[name] = (here, recorded)
        _versions_differ[self.env.cr.dbname] = (key, differ)
        return differ

    @api.model
    def _warn_outvoted(self, fingerprint, differ):
        """Log once (for all the processes of all servers holding these
        folders) that this server's handler modules are not the recorded versions."""
        if self._claim_param(OUTVOTED_PARAM, fingerprint):
            _logger.warning(
                OUTVOTED_LOG,
                ", ".join(
                    f"{name} {here} here, {recorded} recorded" for name, (here, recorded) in sorted(differ.items())
                ),
            )

    @api.model
    def _entry_modules(self, roots, files):
        """``{entry: module}`` of the handler ``files`` (from ``scan(roots)``):
        the module is the folder holding the ``iot_handlers`` root."""
        modules = {os.path.realpath(root): os.path.basename(os.path.dirname(os.path.normpath(root))) for root in roots}
        entries = {}
        for handler in files:
            root = os.path.dirname(os.path.dirname(handler.path))
            entries[handler.entry] = modules.get(root) or os.path.basename(os.path.dirname(root))
        return entries

    @api.model
    def _get_bundle(self, variant="all"):
        """The bundle of ``variant`` built from the handler folders as they
        are, from this process's cache.

        The cache slot is keyed by the registry (a new one is loaded when a
        module is installed, upgraded or uninstalled) and its sequence; handler
        files changed on disk are noticed within ``bundle_cache.recheck_seconds``.
        """
        registry = self.env.registry
        key = (id(registry), registry.registry_sequence)
        return bundle_cache.get(self.env.cr.dbname, key, self._handler_roots, variant)

    @api.model
    def _current_digests(self):
        """``{variant: digest}`` of the current bundles (what every box but
        the canaries of a held bundle should hold).

        Read from system parameters (the same for every worker); a variant no
        request has built yet is built here.
        """
        params = self.env["ir.config_parameter"].sudo()
        return {
            variant: params.get_param(DIGEST_PARAM % variant) or self._get_bundle(variant).digest
            for variant in VARIANTS
        }

    @api.model
    def _held_digests(self):
        """``{variant: digest}`` of the held bundles (variants holding none left out)."""
        params = self.env["ir.config_parameter"].sudo()
        held = {variant: params.get_param(HELD_PARAM % variant) for variant in VARIANTS}
        return {variant: digest for variant, digest in held.items() if digest}

    @api.model
    def _stored_bundle(self, variant, digest):
        """The :class:`Bundle` of the record ``(variant, digest)``, from its
        stored bytes (this process keeps the last few), or None."""
        key = (self.env.cr.dbname, variant, digest)
        with _stored_lock:
            bundle = _stored_bundles.get(key)
            if bundle is not None:
                _stored_bundles.move_to_end(key)
                return bundle
        record = self.sudo().search([("variant", "=", variant), ("digest", "=", digest)], limit=1)
        data = record.data and base64.b64decode(record.data)
        if not data or hashlib.sha256(data).hexdigest() != digest:
            return None
        bundle = Bundle(data, digest, variant, tuple(sorted(zip_files(data))))
        with _stored_lock:
            _stored_bundles[key] = bundle
            while len(_stored_bundles) > STORED_BUNDLES_KEPT:
                _stored_bundles.popitem(last=False)
        return bundle

    # ------------------------------------------------------------------
    # Noticing a bundle change: at registry load and by the cron
    # ------------------------------------------------------------------

    def _register_hook(self):
        """Notice, when the registry loads, a bundle changed by a module
        install, upgrade or uninstall, and flag the boxes holding the old one.

        Every process loading the registry runs this; when nothing changed it
        costs a scan of the handler folders' names and one query.
        """
        super()._register_hook()
        if not self.env.registry.ready:  # not the re-runs of a loaded registry's setup
            self._notice_bundle_change()

    @api.model
    def _cron_sync_digests(self):
        """Notice bundle changes (handler files edited on disk, a change a
        handlers request saw first) even when no registry loads."""
        return self._notice_bundle_change()

    @api.model
    def _notice_bundle_change(self):
        """Record the bundles built from the handler folders as they are now:
        each new one becomes the current bundle of its variant (or the held
        one, when new bundles are held), and the boxes are flagged.

        The folders' fingerprint (names, sizes and dates of the files) is
        compared first: when it is the one recorded, nothing is built and
        nothing written. Returns ``{variant: boxes whose flags changed}`` for
        the variants whose bundle this call recorded.
        """
        roots = self._handler_roots()
        sources = scan(roots)
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(FINGERPRINT_PARAM) == sources.fingerprint:
            return {}
        differ = self._differing_versions()
        if differ:
            # Another server's files win: record nothing, say why once.
            if not self._use_own_transaction():
                self._warn_outvoted(sources.fingerprint, differ)
            else:
                with self.env.registry.cursor() as cr:
                    cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    self.with_env(self.env(cr=cr))._warn_outvoted(sources.fingerprint, differ)
            return {}
        bundles = {variant: build_bundle(sources.files, variant) for variant in VARIANTS}
        modules = self._entry_modules(roots, sources.files)
        if not self._use_own_transaction():
            changed = self._record_digests(bundles, sources.fingerprint, modules)
        else:
            # In a transaction of its own, reading what is committed now: the
            # caller's snapshot (a registry being loaded, a cron) may predate
            # a change another process recorded meanwhile, and the caller may
            # fail later without undoing this.
            try:
                # A lock timeout is answered below: not a "bad query" ERROR line.
                with mute_logger("odoo.sql_db"), self.env.registry.cursor() as cr:
                    cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    # The caller's transaction may hold a lock this one
                    # would wait for (an upgrade altering iot_box): give up
                    # then, and leave it to the cron once the caller is done.
                    cr.execute("SELECT set_config('lock_timeout', %s, true)", [self._notice_lock_timeout])
                    changed = self.with_env(self.env(cr=cr))._record_digests(bundles, sources.fingerprint, modules)
            except psycopg2.errors.LockNotAvailable:
                _logger.info("IoT handlers bundle change left to the cron: its rows are locked")
                self._trigger_sync()
                return {}
        self.env.registry.clear_cache()  # get_param's cache
        self.env["ir.config_parameter"].invalidate_model(["value"])
        self.env["iot.box"].invalidate_model()
        self.invalidate_model()
        return changed

    #: How long a registry load's own transaction waits for a lock before leaving the change to the cron.
    _notice_lock_timeout = "10s"

    @api.model
    def _use_own_transaction(self):
        """False in tests, whose work must stay in the test's transaction."""
        return not (self.env.registry.in_test_mode() or getattr(threading.current_thread(), "testing", False))

    @api.model
    def _record_digests(self, bundles, fingerprint, modules=None):
        """Record the ``{variant: Bundle}`` built from the folders, and flag
        the boxes of each variant whose bundle this transaction recorded.

        Each noticed digest is claimed by a conditional UPDATE: of concurrent
        transactions recording the same bundle, only the first changes the
        row (the others, in READ COMMITTED, find it changed and update
        nothing), so the bundle is recorded and the fleet flagged once per
        change.
        """
        changed = {}
        for variant, bundle in bundles.items():
            if self._claim_param(NOTICED_PARAM % variant, bundle.digest):
                record = self._take_bundle(bundle, modules or {})
                boxes = self._apply_rollout(variant)
                changed[variant] = boxes
                _logger.info(
                    NOTICED_LOG,
                    variant,
                    bundle.digest,
                    record.state,
                    len(boxes),
                )
        self._claim_param(FINGERPRINT_PARAM, fingerprint)
        return changed

    @api.model
    def _take_bundle(self, bundle, modules):
        """Record the ``bundle`` built from the folders of its variant: it
        becomes the held one when new bundles are held (and a current one
        exists), else the current one. A bundle held before it is withdrawn."""
        records = self.sudo()
        variant = bundle.variant
        records._lock_variant(variant)
        record = records.search([("variant", "=", variant), ("digest", "=", bundle.digest)], limit=1)
        current = records._variant_bundle(variant, "current")
        held = records._variant_bundle(variant, "held")
        if record and record == current:
            # The folders build the current bundle again: a held one is dropped.
            (held - record)._retire("withdrawn")
            return record
        state = "held" if current and records._hold_enabled() else "current"
        (held - record)._retire("withdrawn")
        if state == "current":
            current._retire("superseded")
        vals = {"state": state, "retired_date": False}
        if not record:
            record = records.create(
                [{**vals, **records._bundle_values(bundle, modules), "previous_id": current.id or False}]
            )
            record._record_changes()
        else:
            record.write({**vals, "previous_id": current.id or False})
            record._record_changes()
        return record

    @api.model
    def _bundle_values(self, bundle, modules):
        files = zip_files(bundle.data)
        return {
            "variant": bundle.variant,
            "digest": bundle.digest,
            "data": base64.b64encode(bundle.data),
            "size": len(bundle.data),
            "file_count": len(files),
            "file_ids": [
                fields.Command.create({"path": path, "sha256": sha256, "size": size, "module": modules.get(path)})
                for path, (sha256, size) in sorted(files.items())
            ],
        }

    def _record_changes(self):
        """Record the files added, removed and changed since the previous bundle."""
        for bundle in self:
            new = {line.path: line for line in bundle.file_ids}
            old = {line.path: line for line in bundle.previous_id.file_ids}
            commands = [fields.Command.clear()]
            for path in sorted(set(new) | set(old)):
                if path not in old:
                    change, line = "added", new[path]
                elif path not in new:
                    change, line = "removed", old[path]
                elif new[path].sha256 != old[path].sha256:
                    change, line = "changed", new[path]
                else:
                    continue
                commands.append(
                    fields.Command.create(
                        {
                            "path": path,
                            "module": line.module,
                            "change": change,
                            "size": new[path].size if path in new else 0,
                            "previous_size": old[path].size if path in old else 0,
                        }
                    )
                )
            bundle.write({"change_ids": commands, "change_count": len(commands) - 1})

    @api.model
    def _claim_param(self, key, value):
        """Set the system parameter ``key`` to ``value`` unless it has that
        value already; True when this transaction changed it."""
        cr = self.env.cr
        uid, now = self.env.uid, self.env.cr.now()
        cr.execute(
            SQL(
                """UPDATE ir_config_parameter SET value = %s, write_uid = %s, write_date = %s
                    WHERE key = %s AND value IS DISTINCT FROM %s RETURNING id""",
                value,
                uid,
                now,
                key,
                value,
            ),
            log_exceptions=False,
        )
        if cr.rowcount:
            return True
        cr.execute(
            SQL(
                """INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date)
                   VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id""",
                key,
                value,
                uid,
                now,
                uid,
                now,
            ),
            log_exceptions=False,
        )
        return bool(cr.rowcount)

    @api.model
    def _flag_handlers(self, variant, digest, held=None):
        """Set the handlers flag and status of the boxes of ``variant`` in
        one UPDATE, as ``_compute_update_status`` would (worst status first:
        offline, image upgrade required, code update pending, handlers
        outdated, up to date).

        A box is due the current ``digest``, or the ``held`` one if a bundle
        is held and the box is in an open wave of its roll-out (``rollout_due``). Only the handlers part of a status
        changes; the other flags are read as stored. Returns the boxes whose
        flag or status changed.
        """
        Box = self.env["iot.box"]
        Box.flush_model()
        platforms = [platform for platform in VARIANT_PLATFORMS[variant] if platform]
        platform = SQL("platform IN %s", tuple(platforms))
        if False in VARIANT_PLATFORMS[variant]:
            platform = SQL("(%s OR platform IS NULL)", platform)
        due = SQL("(CASE WHEN rollout_due THEN %s ELSE %s END)", held, digest) if held else SQL("%s", digest)
        outdated = SQL("(handlers_digest IS DISTINCT FROM %s)", due)
        status = SQL(
            """(CASE WHEN is_offline THEN 'offline'
                    WHEN needs_image_upgrade THEN 'image_required'
                    WHEN code_update_pending THEN 'code_pending'
                    WHEN %s THEN 'handlers_outdated'
                    ELSE 'up_to_date' END)""",
            outdated,
        )
        self.env.cr.execute(
            SQL(
                """UPDATE iot_box SET handlers_outdated = %s, update_status = %s
                    WHERE %s AND (handlers_outdated IS DISTINCT FROM %s OR update_status IS DISTINCT FROM %s)
                RETURNING id""",
                outdated,
                status,
                platform,
                outdated,
                status,
            ),
            log_exceptions=False,
        )
        boxes = Box.browse([row[0] for row in self.env.cr.fetchall()])
        # What the ORM read before is stale: the flags, and what follows from
        # them (the advice line, the card's colour).
        Box.invalidate_model(flush=False)
        return boxes

    @api.model
    def _bundle_changed_here(self, bundle):
        """This process builds ``bundle``, which is not the last one
        recorded: have the cron record it soon (once per process and bundle)."""
        key = (self.env.cr.dbname, bundle.variant, bundle.digest)
        if key in _triggered:
            return
        _triggered.add(key)
        self._trigger_sync()

    @api.model
    def _trigger_sync(self):
        cron = self.env.ref("iot_update.ir_cron_sync_handlers_digests", raise_if_not_found=False)
        if cron:
            cron.sudo()._trigger()

    # ------------------------------------------------------------------
    # Retention
    # ------------------------------------------------------------------

    @api.model
    def _purge_bundles(self, before):
        """Remove, with their bytes, the bundles retired before ``before``
        that no box holds. Never the current or held ones, nor the previous
        bundle of a current one (what a roll back returns to)."""
        records = self.sudo()
        candidates = records.search([("state", "not in", SERVED_STATES), ("retired_date", "<", before)])
        kept = records.search([("state", "=", "current")]).previous_id
        candidates -= kept
        purged = records.browse()
        Box = self.env["iot.box"].sudo().with_context(active_test=False)
        for bundle in candidates:
            if not Box.search_count(
                [*variant_domain(bundle.variant), ("handlers_digest", "=", bundle.digest)], limit=1
            ):
                purged |= bundle
        count = len(purged)
        purged.unlink()
        if count:
            _logger.info("Purged %s IoT drivers bundles retired before %s", count, before)
        return count

    # ------------------------------------------------------------------
    # POST /iot/get_handlers
    # ------------------------------------------------------------------

    @api.model
    def _serve_handlers(self, handlers_request, if_none_match=None, remote_addr=None):
        """Answer a box asking for its handlers (a ``HandlersRequest``).

        A known box gets the bundle its roll-out says (the held bundle of its
        platform while it is in an open wave of its roll-out, else the current one),
        unless it asks on its own (``auto``) while its automatic drivers
        update is off; a box that asks on its own (``auto``) with the digest
        it is due gets "not modified", a box asked by a person (not
        ``auto``) the whole bundle. Every answer is recorded.
        """
        Event = self.env["iot.box.event"].sudo()
        box = self.env["iot.box"].sudo()._find_box(handlers_request.box_key, handlers_request.mac)
        event = {"identifier": handlers_request.box_key, "remote_addr": remote_addr}
        reason = ""
        if not box:
            reason = "unknown box"
            _logger.warning("IoT handlers refused to %s (%s): unknown box", handlers_request.box_key, remote_addr)
        elif not box.active:
            reason = "archived box"
            _logger.warning("IoT handlers refused to %s (%s): archived box", box.identifier, remote_addr)
        elif handlers_request.auto and not box.drivers_auto_update:
            reason = "automatic drivers update is off"
            _logger.info("IoT handlers not sent to %s: automatic drivers update is off", box.identifier)
        if reason:
            Event._record("refusal", box, detail=reason, **event)
            return HandlersAnswer("refusal", None, reason)

        variant = variant_for(box.platform)
        bundle, recorded = self._due_bundle(box, variant)
        if not recorded:
            # A change this process saw first, served before it is recorded:
            # the cron flags the fleet; this box's own status is worked out
            # against the bundle it gets.
            box = box.with_context(iot_update_handlers_digests={variant: bundle.digest})
        event.update(version=box.version, bundle_digest=bundle.digest)
        # "Load handlers" pressed on the box (auto False) always gets the whole
        # bundle: a box that lost its files keeps its ETag (SPEC 3.2).
        if handlers_request.auto and etag_matches(if_none_match, bundle.digest):
            if box.handlers_digest != bundle.digest:
                box._set_handlers(bundle.digest)
                if box.env.context.get("iot_update_handlers_digests"):
                    box._refresh_update_status()
            Event._record("not_modified", box, **event)
            return HandlersAnswer("not_modified", bundle)
        box._set_handlers(bundle.digest)
        if box.env.context.get("iot_update_handlers_digests"):
            box._refresh_update_status()
        Event._record("delivery", box, detail="automatic" if handlers_request.auto else "on demand", **event)
        return HandlersAnswer("delivery", bundle)

    @api.model
    def _due_bundle(self, box, variant):
        """``(bundle, recorded)``: the bundle ``box`` (of ``variant``) is
        due, the held one while it is in an open wave of its roll-out, else the current
        one. The bytes come from the folders when they build it, else from
        the bundle's record. Costs no query but on a process's first
        serving of a stored bundle.

        The folders are compared with the last bundle *noticed* (recorded
        from them), not with the due one: after a roll back they still build
        the withdrawn bundle, which is not a change. A bundle they build that
        is not recorded yet (``recorded`` False) is served at once when
        nothing is held, as it will become current when recorded; when new
        bundles are held, it waits for the cron to record it.

        A server whose handler modules are not the versions the database
        records (a rolling deploy: ``_differing_versions``) serves the due
        bundle from its record instead: its own folders' files do not win.
        """
        current, held = self._due_digests(variant)
        built = self._get_bundle(variant)
        due = held if box.rollout_due and held else current
        if due and due != built.digest and self._differing_versions():
            # The folders of this server are not the recorded versions: the recorded bundle wins.
            stored = self._stored_bundle(variant, due)
            if stored is not None:
                return stored, True
        noticed = self.env["ir.config_parameter"].sudo().get_param(NOTICED_PARAM % variant)
        if built.digest != noticed:
            self._bundle_changed_here(built)
            if not held and not self._hold_enabled():
                return built, False
        due = held if box.rollout_due and held else current
        if not due or due == built.digest:
            return built, bool(due)
        stored = self._stored_bundle(variant, due)
        if stored is None:
            _logger.warning("IoT handlers bundle %s %s has no stored bytes: serving the folders' one", variant, due)
            return built, False
        return stored, True
