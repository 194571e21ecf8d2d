# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A simulated box that stays on: its websocket to the database's bus (SPEC 3.4).

The genuine box opens it once its check-in answered a non-empty channel, with
the same library (``websocket-client``'s ``WebSocketApp``) and the same
arguments, so the handshake and the frames are the box's own:

- 18.0 (``hw_drivers/websocket_client.py``): ``ws(s)://<server>/websocket``,
  header ``User-Agent: OdooIoTBox/1.0``, no cookie; on open it sends
  ``json.dumps({"event_name": "subscribe", "data": {"channels": [channel],
  "last": 0, "mac_address": mac}})``.
- 19 (``iot_drivers/websocket_client.py``): first ``GET /web/login?db=<db>``
  for a ``session_id`` cookie when it knows the database, then the same
  connection with that cookie and ``{"channels": [channel], "last": <id of the
  last message received>, "identifier": serial}`` as the subscription data.

When the connection closes (the server closes every one after about an hour,
or restarts), the box connects again ``reconnect`` seconds later (10 s, as
``run_forever(reconnect=10)`` and the loop around it do) and subscribes again.
"""

import json
import socket
import threading
import time
import urllib.parse

import requests
import websocket

USER_AGENT = "OdooIoTBox/1.0"
RECONNECT = 10  # seconds, as the genuine box
TIMEOUT = 30


def websocket_url(url):
    """``http(s)://host[:port]/...`` -> ``ws(s)://host[:port]/websocket``, as the box builds it."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme.replace("http", "ws", 1), parts.netloc, "websocket", "", ""))


def subscribe_message(box, channel, last=0):
    """The text frame the box of ``box.style`` sends once connected."""
    if box.style == "18":
        data = {"channels": [channel], "last": 0, "mac_address": box.mac}
    else:
        data = {"channels": [channel], "last": last, "identifier": box.identifier}
    return json.dumps({"event_name": "subscribe", "data": data})


def login_cookie(url, db, timeout=TIMEOUT):
    """The ``session_id`` a 19 box gets from ``GET /web/login?db=<db>`` ("" when none)."""
    response = requests.get(f"{url.rstrip('/')}/web/login", params={"db": db}, timeout=timeout)
    return response.cookies.get("session_id", "")


class BusLink(threading.Thread):
    """One box's websocket, kept open until :meth:`stop`.

    ``events`` (optional) is called with ``(link, what)`` for ``"subscribed"``,
    ``"closed"`` and ``"error: ..."``; counters keep the same facts.
    """

    def __init__(self, url, box, channel, db=None, reconnect=RECONNECT, events=None):
        super().__init__(name=f"bus-{box.name}", daemon=True)
        self.url = url.rstrip("/")
        self.box = box
        self.channel = channel
        self.db = db
        self.reconnect = reconnect
        self.events = events
        self.last = 0  # id of the last notification received (19 boxes send it back)
        self.subscriptions = 0
        self.closes = 0
        self.errors = []
        self.messages = []
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self.app = None

    # -- websocket-client callbacks ---------------------------------------

    def on_open(self, ws):
        if self._stopping.is_set():  # switched off while reconnecting
            ws.close()
            return
        ws.send(self.subscription())
        self.subscriptions += 1
        self.connected.set()
        self._event("subscribed")

    def subscription(self):
        """The text frame sent once connected."""
        return subscribe_message(self.box, self.channel, self.last)

    def on_message(self, ws, message):
        try:
            notifications = json.loads(message)
        except ValueError:
            return
        for notification in notifications if isinstance(notifications, list) else []:
            if isinstance(notification, dict):
                self.messages.append(notification)
                if isinstance(notification.get("id"), int):
                    self.last = max(self.last, notification["id"])

    def on_error(self, ws, error):
        if isinstance(error, websocket.WebSocketConnectionClosedException):
            return  # the server closed it (counted in on_close): the box reconnects
        self.errors.append(f"{type(error).__name__}: {error}")
        self._event(f"error: {type(error).__name__}: {error}")

    def on_close(self, ws, status, message):
        self.connected.clear()
        self.closes += 1
        self._event("closed")

    def _event(self, what):
        if self.events:
            self.events(self, what)

    # -- the box's loop ---------------------------------------------------

    def _app(self):
        kwargs = {}
        if self.box.style == "19" and self.db:
            try:
                session_id = login_cookie(self.url, self.db)
            except requests.RequestException as error:
                self.on_error(None, error)
                session_id = ""
            if session_id:
                kwargs["cookie"] = f"session_id={session_id}"
        return websocket.WebSocketApp(
            websocket_url(self.url),
            header={"User-Agent": USER_AGENT},
            on_open=self.on_open,
            on_message=self.on_message,
            on_error=self.on_error,
            on_close=self.on_close,
            **kwargs,
        )

    def run(self):
        while not self._stopping.is_set():
            self.app = self._app()
            if self._stopping.is_set():
                break
            try:
                self.app.run_forever(reconnect=self.reconnect)
            except Exception as error:  # the genuine box logs it and goes on
                self.on_error(None, error)
            self._stopping.wait(self.reconnect)

    def stop(self):
        """Switch the box off: its connection drops without a closing handshake."""
        self._stopping.set()
        app = self.app
        if app is None:
            return
        app.keep_running = False  # ends run_forever's reconnection loop
        raw = getattr(app.sock, "sock", None)
        if raw is not None:
            try:
                raw.shutdown(socket.SHUT_RDWR)  # wakes the thread waiting on it
            except OSError:
                pass


def keep_connected(url, boxes_and_channels, db=None, reconnect=RECONNECT, events=None):
    """Start a :class:`BusLink` for every ``(box, channel)`` with a channel; returns them."""
    links = [
        BusLink(url, box, channel, db=db, reconnect=reconnect, events=events)
        for box, channel in boxes_and_channels
        if channel
    ]
    for link in links:
        link.start()
    return links


def wait_connected(links, timeout=30):
    """Wait until every link subscribed once; returns those that did not."""
    deadline = time.monotonic() + timeout
    for link in links:
        link.connected.wait(max(0, deadline - time.monotonic()))
    return [link for link in links if not link.subscriptions]


def stop_all(links, timeout=5):
    for link in links:
        link.stop()
    deadline = time.monotonic() + timeout
    for link in links:
        link.join(max(0, deadline - time.monotonic()))
