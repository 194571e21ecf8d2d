# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""POST /iot/setup over real HTTP: the genuine box's own code, and hostile bodies."""

import ast
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import urllib3

from odoo.modules.module import get_module_path

from .iot_common import CONTROLLER_LOGGER, PRINTER, SCALE, IotHttpCase, box_payload


def genuine_send_alldevices():
    """``Manager.send_alldevices`` of the genuine 18.0 box, compiled from the Odoo
    tree that runs these tests. Only the function is loaded: importing
    ``hw_drivers.main`` would start the box's threads."""
    path = Path(get_module_path("hw_drivers"), "main.py")
    tree = ast.parse(path.read_text(), str(path))
    function = next(
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "send_alldevices"
    )
    return compile(ast.Module(body=[function], type_ignores=[]), str(path), "exec")


class GenuineDevice:
    def __init__(self, identifier, values):
        self.device_identifier = identifier
        self.device_name = values["name"]
        self.device_type = values["type"]
        self.device_manufacturer = values["manufacturer"]
        self.device_connection = values["connection"]
        self.device_subtype = values["subtype"]


class TestSetupOverHttp(IotHttpCase):
    def run_genuine_box(self, token, devices, subject=None, version="L24.11-18.0#1a2b3c4"):
        """Run the genuine box's check-in against this server; return its channel."""
        box_helpers = SimpleNamespace(
            get_conf=lambda key: subject if key == "subject" else None,
            get_ip=lambda: "192.168.1.42",
            get_hostname=lambda: "iotbox-genuine",
            get_mac_address=lambda: "aa:bb:cc:dd:ee:42",
            get_token=lambda: token,
            get_version=lambda detailed_version=False: version if detailed_version else version[:6],
        )
        namespace = {
            "helpers": box_helpers,
            "iot_devices": {key: GenuineDevice(key, values) for key, values in devices.items()},
            "json": json,
            "urllib3": urllib3,
            "_logger": logging.getLogger("genuine_box"),
        }
        exec(genuine_send_alldevices(), namespace)
        manager = SimpleNamespace(server_url=self.base_url())
        iot_client = SimpleNamespace(iot_channel=None)
        self.env.flush_all()
        namespace["send_alldevices"](manager, iot_client)
        self.env.invalidate_all()
        return iot_client.iot_channel

    def test_genuine_box_registers_and_updates(self):
        devices = {"usb_printer": PRINTER, "serial_scale": SCALE, "distant_display": PRINTER}
        channel = self.run_genuine_box(self.token, devices, subject="*.abcd.odoo-iot.com")
        box = self.box("aa:bb:cc:dd:ee:42")
        # The box keeps the answer as the bus channel it subscribes to.
        self.assertEqual(channel, box._get_channel())
        self.assertEqual(box.name, "iotbox-genuine")
        self.assertEqual(box.ip, "192-168-1-42.abcd.odoo-iot.com")
        self.assertEqual(box.version, "L24.11-18.0#1a2b3c4")
        # Where the check-in came from, as this server saw it (the test client's address).
        self.assertEqual(box.checkin_remote_addr, "127.0.0.1")
        # The box never sends its distant display.
        self.assertEqual(sorted(box.device_ids.mapped("identifier")), ["serial_scale", "usb_printer"])

        self.run_genuine_box(self.token, {"usb_printer": PRINTER}, version="L25.07-18.0#7654321")
        self.assertEqual(box.version, "L25.07-18.0#7654321")
        self.assertEqual(box.image_version, "25.07")
        self.assertEqual(box.device_ids.filtered("connected").mapped("identifier"), ["usb_printer"])

    def test_genuine_box_with_wrong_token_is_refused(self):
        with self.assertLogs("odoo.addons.iot_update", "WARNING") as logs:
            self.assertEqual(self.run_genuine_box("not-the-token", {"usb_printer": PRINTER}), "")
        self.assertIn("aa:bb:cc:dd:ee:42", "\n".join(logs.output))
        self.assertFalse(self.box("aa:bb:cc:dd:ee:42"))

    def test_reply_is_the_jsonrpc_result_the_box_reads(self):
        response = self.post_setup(box_payload(self.token))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/json; charset=utf-8")
        self.assertEqual(response.json(), {"jsonrpc": "2.0", "id": None, "result": self.box()._get_channel()})

    def test_jsonrpc_envelope_is_accepted_too(self):
        payload = dict(box_payload(self.token), jsonrpc="2.0", method="call", id=7)
        result = self.post_setup(payload).json()
        self.assertEqual(result, {"jsonrpc": "2.0", "id": 7, "result": self.box()._get_channel()})

    def test_hostile_bodies(self):
        long_devices = {f"d{i}": PRINTER for i in range(501)}
        cases = [
            # body, HTTP status, JSON-RPC error code
            (b"{not json", 400, -32700),
            (b"\xff\xfe\x00garbage", 400, -32700),
            (b"", 400, -32700),
            (b"[" * 200_000, 400, -32700),  # nested past Python's recursion limit
            (json.dumps([1, 2]).encode(), 400, -32600),
            (json.dumps({"iot_box": {"identifier": "aa:bb:cc:dd:ee:01"}}).encode(), 400, -32600),
            (json.dumps({"params": ["x"]}).encode(), 400, -32600),
            (json.dumps({"params": {"iot_box": "aa:bb:cc:dd:ee:01"}}).encode(), 400, -32600),
            (box_payload(self.token, identifier=""), 400, -32600),
            (box_payload(self.token, identifier=None), 400, -32600),
            (box_payload(self.token, version=24.11), 400, -32600),
            (box_payload(self.token, name={"a": 1}), 400, -32600),
            (box_payload(self.token, name="x" * 10_000), 400, -32600),
            (box_payload(self.token, name="nul\x00byte"), 400, -32600),
            (box_payload(self.token, devices=long_devices), 400, -32600),
            (box_payload(self.token, devices={"usb": "printer"}), 400, -32600),
            (box_payload(self.token, devices=[PRINTER]), 400, -32600),
            (box_payload(self.token, name="x" * (2 * 1024 * 1024)), 413, -32600),
        ]
        for body, status, code in cases:
            with self.subTest(body=repr(body)[:80]), self.assertLogs(CONTROLLER_LOGGER, "WARNING") as logs:
                response = self.post_setup(body)
                self.assertEqual(response.status_code, status)
                self.assertEqual(response.headers["Content-Type"], "application/json; charset=utf-8")
                self.assertNotIn("Traceback", response.text)
                self.assertEqual(response.json()["error"]["code"], code)
                self.assertFalse(self.Box.with_context(active_test=False).search([]))
                self.assertFalse(self.env["iot.device"].search([]))
            self.assertIn("refused", logs.output[0])

    def test_jsonrpc_id_that_cannot_be_sent_back(self):
        """JSON may escape a lone surrogate, which no UTF-8 answer can carry:
        such an id is answered as null, a usable one is echoed."""
        cases = [
            # id sent, id answered
            ("\ud800", None),
            ("\udfff\ud800", None),
            ("ok \udc80", None),
            ("caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),
        ]

        def envelope(payload, request_id):
            return json.dumps(dict(payload, jsonrpc="2.0", method="call", id=request_id)).encode()

        for request_id, answered in cases:
            with self.subTest(id=ascii(request_id)):
                response = self.post_setup(envelope(box_payload(self.token), request_id))
                channel = self.box()._get_channel()
                self.assertEqual(response.json(), {"jsonrpc": "2.0", "id": answered, "result": channel})
                with self.assertLogs(CONTROLLER_LOGGER, "WARNING"):
                    response = self.post_setup(envelope(box_payload(self.token, identifier=""), request_id))
                self.assertEqual(response.status_code, 400)
                self.assertEqual((response.json()["id"], response.json()["error"]["code"]), (answered, -32600))
        self.assertEqual(self.box().version, "L24.11-18.0#1a2b3c4")

    def test_non_ascii_tokens(self):
        """Tokens are compared as bytes: a non-ASCII token is a wrong token like
        any other, and a pairing token may hold any printable character."""
        with self.assertLogs("odoo.addons.iot_update", "WARNING") as logs:
            refused = self.post_setup(box_payload("jeton-\u00e9t\u00e9-\u4ee4\u724c"))
        self.assertEqual((refused.status_code, refused.json()["result"]), (200, ""))
        self.assertIn("wrong pairing token", logs.output[0])
        self.assertFalse(self.box())

        self.assertEqual(self.post_setup(box_payload(self.token)).status_code, 200)
        with self.assertLogs("odoo.addons.iot_update", "WARNING") as logs:
            refused = self.post_setup(box_payload("\u00e9" * 20, version="L20.01-16.0#0000001"))
        self.assertEqual((refused.status_code, refused.json()["result"]), (200, ""))
        self.assertIn("wrong token", logs.output[0])
        self.assertEqual(self.box().version, "L24.11-18.0#1a2b3c4")

        pairing = "cl\u00e9-d\u2019appairage-\u4ee4\u724c"
        self.env["ir.config_parameter"].set_param("iot_token", pairing)
        admitted = self.post_setup(box_payload(pairing, identifier="aa:bb:cc:dd:ee:02"))
        channel = self.box("aa:bb:cc:dd:ee:02")._get_channel()
        self.assertEqual(admitted.json(), {"jsonrpc": "2.0", "id": None, "result": channel})
        again = self.post_setup(box_payload(pairing, version="L25.07-18.0#0000002"))
        self.assertEqual(again.status_code, 200)
        self.env.invalidate_all()
        self.assertTrue(self.box("aa:bb:cc:dd:ee:02"))
        self.assertEqual(self.box().version, "L25.07-18.0#0000002")

    def test_identifier_of_one_box_and_mac_of_another(self):
        """Such a box is answered, and updated, at every check-in."""
        mac = "aa:bb:cc:dd:ee:0b"
        self.Box.create({"name": "aa-box-18", "identifier": mac})
        self.Box.create({"name": "ab-box-19", "identifier": "SN-000C", "mac": mac})
        self.post_setup(box_payload(self.token, identifier="SN-000A", mac="aa:bb:cc:dd:ee:0a", name="zz-box"))
        for version in ("L25.07-19.0#0000001", "L25.07-19.0#0000002"):
            response = self.post_setup(box_payload(self.token, identifier="SN-000A", mac=mac, version=version))
            self.env.invalidate_all()
            channel = self.box("SN-000A")._get_channel()
            self.assertEqual(response.json(), {"jsonrpc": "2.0", "id": None, "result": channel})
            self.assertEqual(self.box("SN-000A").version, version)
        self.assertEqual(self.box(mac).name, "aa-box-18")

    def test_deeply_nested_identifier(self):
        """JSON nested nearly as deep as the parser accepts, where the box's
        identifier should be: refused with a log line naming its type."""
        for depth in range(880, 1000, 3):
            body = b'{"params": {"iot_box": {"identifier": ' + b"[" * depth + b"]" * depth + b"}}}"
            with self.subTest(depth=depth), self.assertLogs(CONTROLLER_LOGGER, "WARNING") as logs:
                response = self.post_setup(body)
                self.assertEqual(response.status_code, 400)
                self.assertIn(response.json()["error"]["code"], (-32600, -32700))
            self.assertIn("refused", logs.output[0])
            # Either the parser gives up (-32700) or the identifier is a list (-32600): the log says which.
            expected = "<list>" if response.json()["error"]["code"] == -32600 else "body is not JSON"
            self.assertIn(expected, logs.output[0])

    def test_chunked_body_is_refused_unread(self):
        def chunks():
            yield b'{"params": {"iot_box": {"name": "'
            for __ in range(40):
                yield b"x" * 65536
            yield b'"}}}'

        with self.assertLogs(CONTROLLER_LOGGER, "WARNING"):
            response = self.opener.post(
                self.base_url() + "/iot/setup", data=chunks(), headers={"Content-Type": "application/json"}, timeout=30
            )
        self.assertEqual(response.status_code, 411)
        self.assertEqual(response.json()["error"]["code"], -32600)
        self.assertFalse(self.Box.search([]))

    def test_refusal_log_names_the_identifier(self):
        with self.assertLogs(CONTROLLER_LOGGER, "WARNING") as logs:
            self.post_setup(box_payload(self.token, identifier="aa:bb:cc:dd:ee:77", version=["bad"]))
        self.assertIn("aa:bb:cc:dd:ee:77", logs.output[0])

    def test_bad_input_changes_nothing_on_a_known_box(self):
        self.post_setup(box_payload(self.token, devices={"usb_printer": PRINTER}))
        box = self.box()
        before = (box.version, box.name, box.last_contact, box.device_ids.mapped("connected"))
        with self.assertLogs(CONTROLLER_LOGGER, "WARNING"):
            response = self.post_setup(box_payload(self.token, name="n" * 300, version="L20.01-16.0#aaaaaaa"))
        self.assertEqual(response.status_code, 400)
        self.env.invalidate_all()
        self.assertEqual((box.version, box.name, box.last_contact, box.device_ids.mapped("connected")), before)

    def test_only_post(self):
        response = self.url_open("/iot/setup")
        self.assertEqual(response.status_code, 405)


class TestTokensOverHttp(IotHttpCase):
    """Admission and token binding with the genuine box's bytes over real HTTP."""

    def test_token_binding(self):
        channel = self.post_setup(box_payload(self.token)).json()["result"]
        box = self.box()
        self.assertEqual(channel, box._get_channel())
        old_token, new_token = self.token, self.Box._generate_pairing_token()
        for token, version in ((old_token, "L25.01-18.0#0000001"), (new_token, "L25.07-18.0#0000002")):
            with self.subTest(token=token):
                self.assertEqual(self.post_setup(box_payload(token, version=version)).status_code, 200)
                self.env.invalidate_all()
                self.assertEqual(box.version, version)
        with self.assertLogs("odoo.addons.iot_update", "WARNING") as logs:
            response = self.post_setup(box_payload("stolen", version="L20.01-16.0#0000003", name="evil"))
        self.assertEqual(response.json(), {"jsonrpc": "2.0", "id": None, "result": ""})
        self.assertIn("wrong token", "\n".join(logs.output))
        self.env.invalidate_all()
        self.assertEqual((box.version, box.name), ("L25.07-18.0#0000002", "iotbox-01"))
        # Bound to the new pairing token now: the old one no longer works.
        with self.assertLogs("odoo.addons.iot_update", "WARNING"):
            self.post_setup(box_payload(old_token, version="L20.01-16.0#0000004"))
        self.env.invalidate_all()
        self.assertEqual(box.version, "L25.07-18.0#0000002")
