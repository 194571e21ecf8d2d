# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import json
import logging

from odoo import http
from odoo.http import request

from ..tools import box_log as box_log_wire
from ..tools import handlers_request as handlers_wire
from ..tools.setup_payload import MAX_BODY_BYTES, PayloadError, read_setup_payload

_logger = logging.getLogger(__name__)

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def _jsonrpc_id(data):
    """The request id to echo, when the body carried a usable one: a number,
    or a string an answer can carry (JSON may escape a lone surrogate, which
    UTF-8 cannot encode)."""
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return value


def _claimed_identifier(data):
    """The identifier a refused body claims, for the log line: text only, as
    any other JSON value may be as large or as deeply nested as the body
    (too deep for the log line to be written)."""
    try:
        identifier = data["params"]["iot_box"]["identifier"]
    except (KeyError, TypeError, IndexError):
        return None
    return identifier if isinstance(identifier, str) else f"<{type(identifier).__name__}>"


def _read_bounded(stream, limit):
    """The body in ``stream`` (a chunked one included), or None when it holds
    more than ``limit`` bytes: then no more than ``limit + 1`` bytes are read."""
    body = bytearray()
    while len(body) <= limit:
        chunk = stream.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    return None


def _jsonrpc_error(code, message, status, request_id=None):
    return request.make_json_response(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}},
        status=status,
    )


class IotUpdateController(http.Controller):
    # The box posts JSON without a session and checks no HTTP status. This is
    # a type='http' route so that malformed bodies get a JSON-RPC error of our
    # own instead of the dispatcher's plain-text or traceback-carrying answers.
    # csrf=False: boxes have no session, hence no CSRF token; they prove who
    # they are with their pairing token instead.
    @http.route(
        "/iot/setup",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def iot_setup(self, **kwargs):
        httprequest = request.httprequest
        remote_addr = httprequest.remote_addr
        # Boxes send a Content-Length: a body without one (chunked) is refused
        # unread, and so is one over the limit.
        if httprequest.content_length is None:
            _logger.warning("IoT check-in from %s refused: no Content-Length", remote_addr)
            return _jsonrpc_error(INVALID_REQUEST, "Content-Length required", 411)
        if httprequest.content_length > MAX_BODY_BYTES:
            _logger.warning("IoT check-in from %s refused: body larger than %s bytes", remote_addr, MAX_BODY_BYTES)
            return _jsonrpc_error(INVALID_REQUEST, "Request body too large", 413)
        body = httprequest.get_data()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            _logger.warning("IoT check-in from %s refused: body is not JSON", remote_addr)
            return _jsonrpc_error(PARSE_ERROR, "Parse error: the body is not JSON", 400)
        request_id = _jsonrpc_id(data)
        try:
            setup = read_setup_payload(data)
        except PayloadError as error:
            _logger.warning(
                "IoT check-in from %s refused (identifier %.64r): %s", remote_addr, _claimed_identifier(data), error
            )
            return _jsonrpc_error(INVALID_REQUEST, f"Invalid request: {error}", 400, request_id)
        channel = request.env["iot.box"].sudo()._iot_setup(setup, remote_addr)
        return request.make_json_response({"jsonrpc": "2.0", "id": request_id, "result": channel})

    # The box posts a form without a session. csrf=False: boxes have no
    # session, hence no CSRF token; the answer depends only on the box's
    # identity and its "Automatic Drivers update" setting.
    @http.route(
        "/iot/get_handlers",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
        max_content_length=handlers_wire.MAX_BODY_BYTES,
    )
    def iot_get_handlers(self, **kwargs):
        httprequest = request.httprequest
        remote_addr = httprequest.remote_addr
        try:
            handlers_request = handlers_wire.read_handlers_request(kwargs)
        except handlers_wire.HandlersRequestError as error:
            _logger.warning("IoT handlers request from %s refused: %s", remote_addr, error)
            # An 18.0 box deletes its handlers on any non-empty body: say why
            # only to clients that did not send the 18.0 box's 'mac' field.
            return request.make_response(
                b"" if "mac" in kwargs else f"Invalid request: {error}\n".encode(),
                headers=[("Content-Type", "text/plain; charset=utf-8")],
                status=400,
            )
        # All this request writes records what was answered: the history,
        # the bundle a box holds and its date, statuses following from them.
        # The box's next start records them again, so the answer need not
        # wait for PostgreSQL to flush them to disk. A crash of the database
        # server may lose the last moments of such records, never corrupt
        # anything; waiting for that flush was a large part of a delivery's
        # time (docs/benchmarks.md, "Handlers benchmark").
        request.env.cr.execute("SET LOCAL synchronous_commit TO OFF")
        answer = (
            request.env["iot.handlers.bundle"]
            .sudo()
            ._serve_handlers(handlers_request, httprequest.headers.get("If-None-Match"), remote_addr)
        )
        if answer.kind == "refusal":
            # 18.0 boxes ignore the status and must get an empty body; 19-style
            # boxes read the status and keep their handlers on an error.
            return request.make_response(
                b"",
                headers=[("Content-Type", "text/plain; charset=utf-8")],
                status=200 if handlers_request.mac_style else 401,
            )
        etag = f'"{answer.bundle.digest}"'
        if answer.kind == "not_modified":
            return request.make_response(b"", headers=[("ETag", etag)], status=304)
        return request.make_response(
            answer.bundle.data,
            headers=[
                ("Content-Type", "application/zip"),
                ("Content-Disposition", 'attachment; filename="iot_handlers.zip"'),
                ("ETag", etag),
                ("Cache-Control", "no-cache"),
            ],
        )

    # The box's own log (SPEC 3.6): batches of lines from the genuine box's
    # AsyncHTTPHandler, which waits 0.5 s at most and checks nothing but the
    # connection. Every answer is 200 with an empty body; what is refused
    # writes nothing. auth='none': the batch carries no credential, the box is
    # recognised by its identifier and the address it speaks from (model).
    # csrf=False: boxes have no session, hence no CSRF token.
    @http.route(
        "/iot/log",
        type="http",
        auth="none",
        methods=["POST"],
        csrf=False,
        save_session=False,
        # Nothing is written in the request's transaction (see below).
        readonly=True,
        max_content_length=box_log_wire.MAX_BODY_BYTES,
    )
    def iot_log(self, **kwargs):
        httprequest = request.httprequest
        remote_addr = httprequest.remote_addr
        length = httprequest.content_length
        # The genuine box sends its batch chunked (requests posts a
        # generator): read as it comes, never more than the limit. Odoo's
        # request wrapper offers only get_data(), which reads a chunked body
        # whole: the stream is read from the werkzeug request it wraps (as
        # bus/websocket.py reads the socket from its environ).
        body = None
        if length is None or length <= box_log_wire.MAX_BODY_BYTES:
            stream = httprequest._HTTPRequest__wrapped.stream
            body = _read_bounded(stream, box_log_wire.MAX_BODY_BYTES)
        if body is None:
            box_log_wire.box_log_refusals.note(_logger, "body too large", None, remote_addr)
            return _empty_ok()
        try:
            batch = box_log_wire.read_log_batch(body)
        except box_log_wire.BoxLogError as error:
            box_log_wire.box_log_refusals.note(_logger, str(error), None, remote_addr)
            return _empty_ok()
        # The lines kept are collected without a query; the write of what
        # this process accepts within the second checks whom each batch came
        # from (iot.box.log._receive, _write_batches).
        request.env["iot.box.log"].sudo()._receive(batch, remote_addr)
        return _empty_ok()


def _empty_ok():
    return request.make_response(b"", headers=[("Content-Type", "text/plain; charset=utf-8")])
