# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The handlers bundle: which files go in, the zip, and a per-process cache.

A handlers root is an ``iot_handlers`` folder holding ``drivers/`` and
``interfaces/``. The bundle is a zip whose entries are ``drivers/<file>`` and
``interfaces/<file>``, sorted, with fixed timestamps and permissions: the same
files give the same bytes (and the same SHA-256) on every worker and after
every restart.

Only plain files directly inside ``drivers/`` and ``interfaces/`` are taken:
names starting with ``.`` or ``_`` (``__init__.py``, ``__pycache__``,
editor files), sub-folders, devices and links leading out of their folder are
left out.
"""

import fnmatch
import hashlib
import io
import os
import stat
import threading
import time
import zipfile
from typing import NamedTuple

KINDS = ("drivers", "interfaces")

#: Bundle variants: ``all`` for boxes whose platform is not known.
VARIANTS = ("all", "linux", "windows")

#: Files a variant leaves out (the other platform's handlers).
_EXCLUDED = {"all": (), "linux": ("*_W.*",), "windows": ("*_L.*",)}

#: Timestamp of every entry: the oldest a zip can hold.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: ``-rw-r--r--`` regular file, in the high bits as zip stores Unix modes.
ZIP_FILE_MODE = (stat.S_IFREG | 0o644) << 16
_UNIX = 3  # ZipInfo.create_system for Unix, fixed whatever the server runs on


class HandlerFile(NamedTuple):
    kind: str  # "drivers" or "interfaces"
    name: str  # file name, the entry is "<kind>/<name>"
    path: str  # real path of the file to read
    size: int
    mtime_ns: int

    @property
    def entry(self):
        return f"{self.kind}/{self.name}"


class Sources(NamedTuple):
    """The handler files of a list of roots, and a fingerprint of their state."""

    files: tuple  # of HandlerFile, one per entry, sorted by entry
    fingerprint: str


class Bundle(NamedTuple):
    data: bytes
    digest: str  # SHA-256 hex of ``data``
    variant: str
    entries: tuple  # entry names, sorted


def variant_for(platform):
    """The bundle variant for a box platform (``linux``, ``windows``, ``test``, ``unknown``)."""
    return platform if platform in ("linux", "windows") else "all"


def _acceptable_name(name):
    if not name or name[0] in "._" or "\\" in name or not name.isprintable():
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes kept as surrogates
        return False
    return True


def _folder_files(kind, folder):
    """The acceptable files of one ``drivers`` or ``interfaces`` folder."""
    try:
        base = os.path.realpath(folder)
        entries = list(os.scandir(folder))
    except OSError:  # missing, unreadable or not a folder
        return []
    found = []
    for entry in entries:
        if not _acceptable_name(entry.name):
            continue
        real = os.path.realpath(entry.path)
        if os.path.dirname(real) != base:
            continue  # a link that leads out of its folder
        try:
            info = os.stat(real)
        except OSError:  # dangling link, vanished file
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        found.append(HandlerFile(kind, entry.name, real, info.st_size, info.st_mtime_ns))
    return found


def scan(roots):
    """Collect the handler files of ``roots`` (``iot_handlers`` folders, in order).

    When two roots hold a file of the same name, the later root wins, as it
    would when the box extracts both. Only names and ``stat`` data are read,
    which makes this cheap enough to detect changes; contents are read by
    :func:`build_bundle`.
    """
    by_entry = {}
    for root in roots:
        for kind in KINDS:
            for handler in _folder_files(kind, os.path.join(root, kind)):
                by_entry[handler.entry] = handler
    files = tuple(by_entry[entry] for entry in sorted(by_entry))
    digest = hashlib.sha256()
    for root in roots:
        digest.update(f"root\0{root}\0".encode("utf-8", "surrogateescape"))
    for handler in files:
        line = f"{handler.entry}\0{handler.path}\0{handler.size}\0{handler.mtime_ns}\0"
        digest.update(line.encode("utf-8", "surrogateescape"))  # paths may hold undecodable bytes
    return Sources(files, digest.hexdigest())


def select(files, variant):
    """The files of ``files`` a box of ``variant`` gets."""
    excluded = _EXCLUDED[variant]
    return tuple(
        handler for handler in files if not any(fnmatch.fnmatchcase(handler.name, pattern) for pattern in excluded)
    )


def build_zip(members):
    """A deterministic zip of ``members``: ``(entry, bytes)`` pairs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry, data in sorted(members):
            info = zipfile.ZipInfo(entry, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ZIP_FILE_MODE
            info.create_system = _UNIX
            archive.writestr(info, data)
    return buffer.getvalue()


def build_bundle(files, variant="all"):
    """The :class:`Bundle` of the ``files`` (from :func:`scan`) for ``variant``.

    A file that vanished since the scan is left out; the next fingerprint
    check sees the change and rebuilds.
    """
    members = []
    for handler in select(files, variant):
        try:
            with open(handler.path, "rb") as source:
                members.append((handler.entry, source.read()))
        except OSError:
            continue
    data = build_zip(members)
    return Bundle(data, hashlib.sha256(data).hexdigest(), variant, tuple(sorted(entry for entry, __ in members)))


class _Source:
    __slots__ = ("bundles", "checked_at", "files", "fingerprint", "key", "roots")

    def __init__(self, key, roots, sources, now):
        self.key = key
        self.roots = tuple(roots)
        self.files = sources.files
        self.fingerprint = sources.fingerprint
        self.checked_at = now
        self.bundles = {}


class BundleCache:
    """Bundles built once per content change, kept per process.

    One slot per database. A slot is keyed by what decides the list of roots
    (e.g. the registry's sequence): a new key means new roots, hence a scan and
    new bundles. Under an unchanged key, the files are scanned again at most
    every :attr:`recheck_seconds`, and the bundles are rebuilt only when the
    fingerprint changed. Otherwise a request costs a dictionary look-up.
    """

    #: Seconds between two fingerprint checks of an unchanged slot.
    recheck_seconds = 10.0

    def __init__(self, scanner=scan, builder=build_bundle, clock=time.monotonic):
        self._scanner = scanner
        self._builder = builder
        self._clock = clock
        self._lock = threading.Lock()
        self._slots = {}

    def get(self, db, key, roots, variant="all"):
        """The current :class:`Bundle` of ``variant`` for ``db``.

        ``roots`` is a callable returning the handler roots; it is called only
        when ``key`` is new for ``db``.
        """
        if variant not in _EXCLUDED:
            raise ValueError(f"unknown bundle variant {variant!r}")
        with self._lock:
            now = self._clock()
            slot = self._slots.get(db)
            if slot is None or slot.key != key:
                found_roots = tuple(roots())
                slot = _Source(key, found_roots, self._scanner(found_roots), now)
                self._slots[db] = slot
            elif now - slot.checked_at >= self.recheck_seconds:
                sources = self._scanner(slot.roots)
                slot.checked_at = now
                if sources.fingerprint != slot.fingerprint:
                    slot.files, slot.fingerprint = sources.files, sources.fingerprint
                    slot.bundles = {}
            bundle = slot.bundles.get(variant)
            if bundle is None:
                bundle = slot.bundles[variant] = self._builder(slot.files, variant)
            return bundle

    def clear(self, db=None):
        """Forget the bundles of ``db`` (of every database when None)."""
        with self._lock:
            if db is None:
                self._slots.clear()
            else:
                self._slots.pop(db, None)
