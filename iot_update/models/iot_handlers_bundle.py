# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging
import os
import threading
from typing import NamedTuple

import psycopg2.errors

from odoo import api, models
from odoo.modules.module import get_module_path
from odoo.tools import SQL

from ..tools.bundle import VARIANTS, Bundle, BundleCache, build_bundle, scan, variant_for
from ..tools.handlers_request import etag_matches

_logger = logging.getLogger(__name__)

#: Modules holding the standard drivers: never installed on a server, found by path.
STANDARD_DRIVER_MODULES = ("hw_drivers", "iot_drivers")
#: System parameter holding the current digest of a bundle variant.
DIGEST_PARAM = "iot_update.handlers_digest.%s"
#: System parameter holding the fingerprint of the handler folders the digests were built from.
FINGERPRINT_PARAM = "iot_update.handlers_fingerprint"
#: Box platforms served by each variant (False: a box whose version was never read).
VARIANT_PLATFORMS = {"linux": ["linux"], "windows": ["windows"], "all": ["test", "unknown", False]}

#: Bundles of this process, shared by its threads and databases.
bundle_cache = BundleCache()
#: ``(database, variant, digest)`` of the changes this process asked the cron to record.
_triggered = set()


class HandlersAnswer(NamedTuple):
    """What to answer a handlers request: ``kind`` is an ``iot.box.event`` kind."""

    kind: str  # "delivery", "not_modified" or "refusal"
    bundle: Bundle | None
    reason: str = ""


class IotHandlersBundle(models.AbstractModel):
    _name = "iot.handlers.bundle"
    _description = "IoT Handlers Bundle"

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
    def _get_bundle(self, variant="all"):
        """The current bundle of ``variant``, from this process's cache.

        The cache slot is keyed by the registry (a new one is loaded when a
        module is installed, upgraded or uninstalled) and its sequence; handler
        files changed on disk are noticed within ``bundle_cache.recheck_seconds``.
        """
        registry = self.env.registry
        key = (id(registry), registry.registry_sequence)
        return bundle_cache.get(self.env.cr.dbname, key, self._handler_roots, variant)

    @api.model
    def _current_digests(self):
        """``{variant: digest}`` of the bundles boxes should hold.

        Read from system parameters (the same for every worker); a variant no
        request has built yet is built here.
        """
        params = self.env["ir.config_parameter"].sudo()
        return {
            variant: params.get_param(DIGEST_PARAM % variant) or self._get_bundle(variant).digest
            for variant in VARIANTS
        }

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
        """Make the bundles built from the handler folders as they are now the
        current ones, flagging the boxes that hold another one.

        The folders' fingerprint (names, sizes and dates of the files) is
        compared first: when it is the one recorded, nothing is built and
        nothing written. Returns ``{variant: boxes whose flags changed}`` for
        the variants whose digest this call recorded.
        """
        sources = scan(self._handler_roots())
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(FINGERPRINT_PARAM) == sources.fingerprint:
            return {}
        digests = {variant: build_bundle(sources.files, variant).digest for variant in VARIANTS}
        if not self._use_own_transaction():
            changed = self._record_digests(digests, sources.fingerprint)
        else:
            # In a transaction of its own, reading what is committed now: the
            # caller's snapshot (a registry being loaded, a cron) may predate
            # a change another process recorded meanwhile, and the caller may
            # fail later without undoing this.
            try:
                with self.env.registry.cursor() as cr:
                    cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    # The caller's transaction may hold a lock this one
                    # would wait for (an upgrade altering iot_box): give up
                    # then, and leave it to the cron once the caller is done.
                    cr.execute("SET LOCAL lock_timeout = '10s'")
                    changed = self.with_env(self.env(cr=cr))._record_digests(digests, sources.fingerprint)
            except psycopg2.errors.LockNotAvailable:
                _logger.info("IoT handlers bundle change left to the cron: its rows are locked")
                self._trigger_sync()
                return {}
        self.env.registry.clear_cache()  # get_param's cache
        self.env["ir.config_parameter"].invalidate_model(["value"])
        self.env["iot.box"].invalidate_model()
        return changed

    @api.model
    def _use_own_transaction(self):
        """False in tests, whose work must stay in the test's transaction."""
        return not (self.env.registry.in_test_mode() or getattr(threading.current_thread(), "testing", False))

    @api.model
    def _record_digests(self, digests, fingerprint):
        """Record ``{variant: digest}`` as current, and flag the boxes of each
        variant whose digest this transaction changed.

        Each digest parameter is changed by a conditional UPDATE: of
        concurrent transactions recording the same digest, only the first
        changes the row (the others, in READ COMMITTED, find it changed and
        update nothing), so the fleet is flagged once per change.
        """
        changed = {}
        for variant, digest in digests.items():
            if self._claim_param(DIGEST_PARAM % variant, digest):
                boxes = self._flag_handlers(variant, digest)
                changed[variant] = boxes
                _logger.info(
                    "IoT handlers bundle %s is now %s: handlers flag or status changed on %s boxes",
                    variant,
                    digest,
                    len(boxes),
                )
        self._claim_param(FINGERPRINT_PARAM, fingerprint)
        return changed

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
    def _flag_handlers(self, variant, digest):
        """Set the handlers flag and status of the boxes of ``variant`` for
        the current ``digest``, in one UPDATE, as ``_compute_update_status``
        would (worst status first: offline, image upgrade required, code
        update pending, handlers outdated, up to date).

        Only the handlers part of a status changes; the other flags are read
        as stored. Returns the boxes whose flag or status changed.
        """
        Box = self.env["iot.box"]
        Box.flush_model()
        platforms = [platform for platform in VARIANT_PLATFORMS[variant] if platform]
        platform = SQL("platform IN %s", tuple(platforms))
        if False in VARIANT_PLATFORMS[variant]:
            platform = SQL("(%s OR platform IS NULL)", platform)
        outdated = SQL("(handlers_digest IS DISTINCT FROM %s)", digest)
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
        """This process serves ``bundle``, whose digest is not the recorded
        one: have the cron record it soon (once per process and bundle)."""
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
    # POST /iot/get_handlers
    # ------------------------------------------------------------------

    @api.model
    def _serve_handlers(self, handlers_request, if_none_match=None, remote_addr=None):
        """Answer a box asking for its handlers (a ``HandlersRequest``).

        A known box gets the bundle of its platform, unless it asks on its own
        (``auto``) while its automatic drivers update is off; a box that sends
        the digest it holds gets "not modified". Every answer is recorded.
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
        bundle = self._get_bundle(variant)
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(DIGEST_PARAM % variant) != bundle.digest:
            # A change this process saw first: the cron flags the fleet; this
            # box's own status is worked out against the bundle it gets.
            self._bundle_changed_here(bundle)
            box = box.with_context(iot_update_handlers_digests={variant: bundle.digest})
        event.update(version=box.version, bundle_digest=bundle.digest)
        if etag_matches(if_none_match, bundle.digest):
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
