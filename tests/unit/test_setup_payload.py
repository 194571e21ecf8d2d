# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import pytest

from iot_update_tools.setup_payload import MAX_DEVICES, PayloadError, read_setup_payload

BOX = {
    "name": "iotbox-shop",
    "identifier": "aa:bb:cc:dd:ee:01",
    "ip": "192.168.1.20",
    "token": "secret-token",
    "version": "L24.11-18.0#1a2b3c4",
}
PRINTER = {
    "name": "Epson",
    "type": "printer",
    "manufacturer": "Epson",
    "connection": "usb",
    "subtype": "receipt_printer",
}


def body(box=None, devices=None, **box_changes):
    iot_box = dict(BOX if box is None else box, **box_changes)
    return {"params": {"iot_box": iot_box, "devices": {} if devices is None else devices}}


def test_genuine_18_body():
    request = read_setup_payload(body(devices={"usb_printer_1": PRINTER}))
    assert request.identifier == "aa:bb:cc:dd:ee:01"
    assert request.mac == ""
    assert request.token == "secret-token"
    assert request.devices == {"usb_printer_1": PRINTER}


def test_19_body_with_serial_and_mac():
    request = read_setup_payload(body(identifier="SN-0001", mac="aa:bb:cc:dd:ee:02"))
    assert (request.identifier, request.mac) == ("SN-0001", "aa:bb:cc:dd:ee:02")


def test_missing_optional_fields_are_empty():
    request = read_setup_payload({"params": {"iot_box": {"identifier": "x"}}})
    assert request == request._replace(name="", ip="", token="", version="", mac="", devices={})


@pytest.mark.parametrize(
    "data, reason",
    [
        ([], "body must be a JSON object"),
        ("text", "body must be a JSON object"),
        ({}, "'params' must be an object"),
        ({"params": []}, "'params' must be an object"),
        ({"params": {}}, "'params.iot_box' must be an object"),
        ({"params": {"iot_box": "box"}}, "'params.iot_box' must be an object"),
        (body(identifier=None), "identifier is missing"),
        (body(identifier="   "), "identifier is missing"),
        (body(identifier=12), "identifier must be a string"),
        (body(version=["L24.11"]), "version must be a string"),
        (body(token=True), "token must be a string"),
        (body(name="n" * 256), "name is longer than 255"),
        (body(identifier="i" * 65), "identifier is longer than 64"),
        (body(version="v" * 129), "version is longer than 128"),
        (body(name="box\x00"), "control characters"),
        (body(identifier="aa:bb\nWARNING forged log line"), "control characters"),
        (body(devices={"p\r1": PRINTER}), "control characters"),
        (body(devices=["printer"]), "'params.devices' must be an object"),
        (body(devices={"p": "printer"}), "must be an object"),
        (body(devices={"p": dict(PRINTER, name=3)}), "device name must be a string"),
        (body(devices={"": PRINTER}), "empty identifier"),
        (body(devices={f"d{i}": PRINTER for i in range(MAX_DEVICES + 1)}), "more than 500 devices"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(data, reason):
    with pytest.raises(PayloadError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        read_setup_payload(data)


def test_500_devices_are_accepted():
    devices = {f"d{i}": PRINTER for i in range(MAX_DEVICES)}
    assert len(read_setup_payload(body(devices=devices)).devices) == MAX_DEVICES
