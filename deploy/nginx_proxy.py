# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""nginx in front of several Odoo servers: the configuration rendered from
``nginx-iot_update.conf`` for given ports, and nginx run as a child process
(not a daemon) with its own prefix folder, pid and log files.

Used by ``./dev run --servers N``, the two-server tests and the benchmark.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx-iot_update.conf")
#: Where Debian installs nginx (not always on a user's PATH).
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")


def nginx_binary():
    """The nginx executable, or None when nginx is not installed."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in NGINX_PATHS if os.access(path, os.X_OK)), None)


def render(listen, servers, prefix, template=TEMPLATE):
    """The configuration for nginx listening on ``listen`` (a port or
    ``address:port``) in front of ``servers``: ``[(http_port, gevent_port)]``
    of Odoo servers on 127.0.0.1, with its files under ``prefix``."""
    return (
        Path(template)
        .read_text()
        .format(
            user_line="user root;" if os.geteuid() == 0 else "",
            prefix=prefix,
            listen=listen,
            http_servers="\n".join(f"        server 127.0.0.1:{http};" for http, __ in servers),
            gevent_servers="\n".join(f"        server 127.0.0.1:{gevent};" for __, gevent in servers),
        )
    )


class Nginx:
    """nginx run in the foreground (``daemon off``) from a prefix folder of its own."""

    def __init__(self, port, servers, prefix=None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.prefix = Path(prefix or tempfile.mkdtemp(prefix="iot_update_nginx_"))
        self.conf = self.prefix / "nginx.conf"
        self.process = None
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx; ./dev setup as root)")
        self.binary = binary
        self.conf.write_text(render(f"127.0.0.1:{port}", servers, self.prefix))

    @property
    def error_log(self):
        return self.prefix / "error.log"

    def start(self, timeout=20):
        command = [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-g", "daemon off;"]
        test = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        if test.returncode:
            raise RuntimeError(f"nginx rejects its configuration: {test.stderr}")
        with (self.prefix / "stderr.txt").open("wb") as stderr:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx stopped: {(self.prefix / 'stderr.txt').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx does not listen on {self.port}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)
