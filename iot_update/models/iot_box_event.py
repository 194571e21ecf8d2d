# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.bundle import variant_for
from ..tools.settings import positive_int

_logger = logging.getLogger(__name__)

RETENTION_PARAM = "iot_update.event_retention_days"
DEFAULT_RETENTION_DAYS = 90
#: A refusal of an unknown box is not recorded when another one came from the
#: same address within this delay, whatever identifier it claimed: anyone can
#: make such requests, the table must not grow with them.
UNKNOWN_REFUSAL_QUIET_MINUTES = 10


class IotBoxEvent(models.Model):
    _name = "iot.box.event"
    _description = "IoT Box Event"
    _order = "date desc, id desc"
    _log_access = False

    box_id = fields.Many2one("iot.box", string="IoT Box", ondelete="cascade", index=True)
    identifier = fields.Char(help="Identifier the request claimed (kept for refusals of unknown boxes).")
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    kind = fields.Selection(
        [
            ("checkin", "Check-in"),
            ("admission", "Admission"),
            ("delivery", "Handlers delivery"),
            ("not_modified", "Handlers not modified"),
            ("refusal", "Refusal"),
            ("back_online", "Back online"),
            ("went_offline", "Went offline"),
        ],
        required=True,
    )
    version = fields.Char(help="Version the box reported.")
    # Indexed: a bundle's first and last deliveries are read from here.
    bundle_digest = fields.Char(help="SHA-256 of the handlers bundle delivered.", index="btree_not_null")
    bundle_id = fields.Many2one(
        "iot.handlers.bundle",
        string="Drivers Bundle",
        compute="_compute_bundle_id",
        help="The recorded drivers bundle delivered (found by its digest and the box's platform).",
    )
    detail = fields.Char(help="Refusal reason or other detail.")
    remote_addr = fields.Char(string="Requesting Address", help="Address the request came from (may be a proxy).")
    company_id = fields.Many2one(related="box_id.company_id", store=True, index=True)

    @api.depends("bundle_digest", "box_id.platform")
    def _compute_bundle_id(self):
        """The bundle of each event, by digest and the box's platform: not
        stored, so that recording a delivery stays one INSERT. One query for
        the events shown."""
        digests = {digest for digest in self.mapped("bundle_digest") if digest}
        by_key, by_digest = {}, {}
        Bundle = self.env["iot.handlers.bundle"]
        bundles = Bundle.search_fetch([("digest", "in", list(digests))], ["variant", "digest"]) if digests else ()
        for bundle in bundles:
            by_key[bundle.variant, bundle.digest] = bundle
            by_digest.setdefault(bundle.digest, bundle)
        for event in self:
            digest = event.bundle_digest
            bundle = by_key.get((variant_for(event.box_id.platform), digest)) or by_digest.get(digest)
            event.bundle_id = bundle or False

    @api.model
    def _record(self, kind, box=None, identifier=None, version=None, bundle_digest=None, detail=None, remote_addr=None):
        """Record what happened to ``box`` (an ``iot.box``, possibly empty).

        Every check-in and every handlers request of the fleet writes one
        event, so this is one INSERT rather than ``create()``, whose default
        values (which read the requesting user's company) and flush would
        weigh on each of those requests. The history is append-only and has
        no computed field but the company, given here; override this method,
        not ``create()``, to react to events.

        Returns the event, or an empty recordset when a repeated refusal of
        an unknown box was not recorded.
        """
        if kind == "refusal" and not box and self._recently_refused(remote_addr):
            return self.browse()
        # What create() would refuse is refused here too.
        if kind not in dict(self._fields["kind"].selection):
            raise ValueError(f"unknown IoT box event kind {kind!r}")
        values = {
            "kind": kind,
            "date": fields.Datetime.now(),
            "box_id": box.id if box else None,
            "company_id": box.company_id.id if box and box.company_id else None,
            "identifier": identifier or (box.identifier if box else None),
            "version": version or None,
            "bundle_digest": bundle_digest or None,
            "detail": detail or None,
            "remote_addr": remote_addr or None,
        }
        self.env.cr.execute(
            SQL(
                "INSERT INTO iot_box_event (%s) VALUES %s RETURNING id",
                SQL(", ").join(SQL.identifier(name) for name in values),
                tuple(values.values()),
            )
        )
        event = self.browse(self.env.cr.fetchone()[0])
        if box:
            box.invalidate_recordset(["event_ids"], flush=False)
        return event

    @api.model
    def _recently_refused(self, remote_addr):
        since = fields.Datetime.now() - timedelta(minutes=UNKNOWN_REFUSAL_QUIET_MINUTES)
        return bool(
            self.sudo().search_count(
                [
                    ("kind", "=", "refusal"),
                    ("box_id", "=", False),
                    ("remote_addr", "=", remote_addr or False),
                    ("date", ">=", since),
                ],
                limit=1,
            )
        )

    @api.model
    def _get_retention_days(self):
        return positive_int(self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM), DEFAULT_RETENTION_DAYS)

    @api.model
    def _cron_purge_events(self):
        """Remove the events older than the retention delay, and the drivers
        bundles retired before it that no box holds."""
        limit = fields.Datetime.now() - timedelta(days=self._get_retention_days())
        old = self.sudo().search([("date", "<", limit)])
        count = len(old)
        old.unlink()
        _logger.info("Purged %s IoT box events older than %s", count, limit)
        self.env["iot.handlers.bundle"].sudo()._purge_bundles(limit)
        return count
