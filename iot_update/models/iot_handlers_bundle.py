# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging
import os
from typing import NamedTuple

from odoo import api, models
from odoo.modules.module import get_module_path

from ..tools.bundle import VARIANTS, Bundle, BundleCache, variant_for
from ..tools.handlers_request import etag_matches

_logger = logging.getLogger(__name__)

#: Modules holding the standard drivers: never installed on a server, found by path.
STANDARD_DRIVER_MODULES = ("hw_drivers", "iot_drivers")
#: System parameter holding the current digest of a bundle variant.
DIGEST_PARAM = "iot_update.handlers_digest.%s"
#: Box platforms served by each variant (False: a box whose version was never read).
VARIANT_PLATFORMS = {"linux": ["linux"], "windows": ["windows"], "all": ["test", "unknown", False]}

#: Bundles of this process, shared by its threads and databases.
bundle_cache = BundleCache()


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

        The cache slot is keyed by the registry's sequence, which changes when
        a module is installed, upgraded or uninstalled; handler files changed
        on disk are noticed within ``bundle_cache.recheck_seconds``.
        """
        registry = self.env.registry
        return bundle_cache.get(self.env.cr.dbname, registry.registry_sequence, self._handler_roots, variant)

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

    @api.model
    def _sync_digest(self, bundle):
        """Make ``bundle`` the current one of its variant. When it is new, the
        boxes of that variant get their statuses recomputed in one batch.

        Returns the boxes that were recomputed.
        """
        params = self.env["ir.config_parameter"].sudo()
        key = DIGEST_PARAM % bundle.variant
        if params.get_param(key) == bundle.digest:
            return self.env["iot.box"]
        params.set_param(key, bundle.digest)
        _logger.info("IoT handlers bundle %s is now %s (%s files)", bundle.variant, bundle.digest, len(bundle.entries))
        boxes = (
            self.env["iot.box"]
            .sudo()
            .with_context(active_test=False)
            .search([("platform", "in", VARIANT_PLATFORMS[bundle.variant]), ("handlers_digest", "!=", False)])
        )
        boxes._refresh_update_status()
        return boxes

    @api.model
    def _cron_sync_digests(self):
        """Notice bundle changes (module upgrades, edited handler files) even
        when no box asks, so that the dashboard flags outdated boxes."""
        for variant in VARIANTS:
            self._sync_digest(self._get_bundle(variant))

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

        bundle = self._get_bundle(variant_for(box.platform))
        self._sync_digest(bundle)
        event.update(version=box.version, bundle_digest=bundle.digest)
        if etag_matches(if_none_match, bundle.digest):
            if box.handlers_digest != bundle.digest:
                box._set_handlers(bundle.digest)
            Event._record("not_modified", box, **event)
            return HandlersAnswer("not_modified", bundle)
        box._set_handlers(bundle.digest)
        Event._record("delivery", box, detail="automatic" if handlers_request.auto else "on demand", **event)
        return HandlersAnswer("delivery", bundle)
