# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import io
import os
import zipfile

import pytest

from iot_update_tools.bundle import (
    ZIP_DATE_TIME,
    BundleCache,
    build_bundle,
    build_zip,
    scan,
    select,
    variant_for,
)

FILES = {
    "drivers/PrinterDriver_L.py": b"# linux printer\n",
    "drivers/PrinterDriver_W.py": b"# windows printer\n",
    "drivers/SerialScaleDriver.py": b"# scale\n" * 200,
    "interfaces/USBInterface_L.py": b"# usb\n",
    "interfaces/SerialInterface.py": b"# serial\n",
}


def make_root(base, files=FILES, name="iot_handlers"):
    root = base / name
    for entry, data in files.items():
        path = root / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def unzip(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_bundle_holds_exactly_the_handler_files(tmp_path):
    root = make_root(tmp_path)
    bundle = build_bundle(scan([str(root)]).files)
    assert unzip(bundle.data) == FILES
    assert bundle.entries == tuple(sorted(FILES))
    assert bundle.variant == "all"


def test_entries_sorted_with_fixed_date_and_mode(tmp_path):
    root = make_root(tmp_path)
    with zipfile.ZipFile(io.BytesIO(build_bundle(scan([str(root)]).files).data)) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(FILES)
    for info in infos:
        assert info.date_time == ZIP_DATE_TIME
        assert info.external_attr >> 16 == 0o100644
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.create_system == 3


def test_same_content_same_bytes(tmp_path):
    """Two copies of the same files, written in another order at another time,
    give byte-identical bundles."""
    first = make_root(tmp_path / "a")
    second = make_root(tmp_path / "b", dict(reversed(FILES.items())))
    os.utime(second / "drivers" / "PrinterDriver_L.py", (1_000_000, 1_000_000))
    one = build_bundle(scan([str(first)]).files)
    two = build_bundle(scan([str(second)]).files)
    assert one.data == two.data
    assert one.digest == two.digest
    assert build_bundle(scan([str(first)]).files).data == one.data


def test_one_changed_byte_changes_the_digest(tmp_path):
    root = make_root(tmp_path)
    before = build_bundle(scan([str(root)]).files)
    (root / "drivers" / "SerialScaleDriver.py").write_bytes(b"# scale\n" * 199 + b"# scalf\n")
    after = build_bundle(scan([str(root)]).files)
    assert before.digest != after.digest


def test_build_zip_ignores_member_order():
    members = [("drivers/b.py", b"b"), ("drivers/a.py", b"a"), ("interfaces/c.py", b"c")]
    assert build_zip(members) == build_zip(list(reversed(members)))


def test_unsafe_and_hidden_names_left_out(tmp_path):
    root = make_root(tmp_path)
    drivers = root / "drivers"
    (drivers / ".hidden.py").write_text("x")
    (drivers / "__init__.py").write_text("x")
    (drivers / "_private.py").write_text("x")
    (drivers / "__pycache__").mkdir()
    (drivers / "__pycache__" / "PrinterDriver_L.cpython-311.pyc").write_bytes(b"\0")
    (drivers / "subfolder").mkdir()
    (drivers / "subfolder" / "Nested.py").write_text("x")
    (drivers / "back\\slash.py").write_text("x")
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (drivers / "Outside.py").symlink_to(secret)
    (drivers / "Dangling.py").symlink_to(tmp_path / "nowhere.py")
    (drivers / "FolderLink.py").symlink_to(drivers / "subfolder")
    (root / "interfaces" / "Escape.py").symlink_to(drivers / "PrinterDriver_L.py")
    os.mkfifo(drivers / "Fifo.py")
    names = {handler.entry for handler in scan([str(root)]).files}
    assert names == set(FILES)


def test_link_inside_its_folder_is_followed(tmp_path):
    root = make_root(tmp_path)
    (root / "drivers" / "Alias.py").symlink_to(root / "drivers" / "SerialScaleDriver.py")
    files = unzip(build_bundle(scan([str(root)]).files).data)
    assert files["drivers/Alias.py"] == FILES["drivers/SerialScaleDriver.py"]


def test_missing_roots_and_folders_are_empty(tmp_path):
    (tmp_path / "only_drivers" / "drivers").mkdir(parents=True)
    (tmp_path / "only_drivers" / "drivers" / "A.py").write_text("a")
    sources = scan([str(tmp_path / "missing"), str(tmp_path / "only_drivers")])
    assert [handler.entry for handler in sources.files] == ["drivers/A.py"]
    empty = build_bundle(())
    assert unzip(empty.data) == {}


def test_root_whose_path_is_not_utf8(tmp_path):
    """An addons folder whose name is not UTF-8 (kept by Python as lone
    surrogates) is scanned like any other."""
    base = tmp_path / os.fsdecode(b"addons-\xff")
    root = make_root(base)
    sources = scan([str(root)])
    assert [handler.entry for handler in sources.files] == sorted(FILES)
    assert unzip(build_bundle(sources.files).data) == FILES


def test_later_root_wins(tmp_path):
    standard = make_root(tmp_path / "standard")
    custom = make_root(tmp_path / "custom", {"drivers/PrinterDriver_L.py": b"# custom printer\n"})
    files = unzip(build_bundle(scan([str(standard), str(custom)]).files).data)
    assert files["drivers/PrinterDriver_L.py"] == b"# custom printer\n"
    assert len(files) == len(FILES)


@pytest.mark.parametrize(
    "variant, left_out",
    [
        ("all", set()),
        ("linux", {"drivers/PrinterDriver_W.py"}),
        ("windows", {"drivers/PrinterDriver_L.py", "interfaces/USBInterface_L.py"}),
    ],
)
def test_platform_variants(tmp_path, variant, left_out):
    root = make_root(tmp_path)
    bundle = build_bundle(scan([str(root)]).files, variant)
    assert set(unzip(bundle.data)) == set(FILES) - left_out


def test_select_matches_the_suffix_only(tmp_path):
    root = make_root(
        tmp_path, {"drivers/L10nEGDrivers.py": b"", "drivers/Wifi_Driver.py": b"", "drivers/X_W.json": b""}
    )
    files = scan([str(root)]).files
    assert [handler.name for handler in select(files, "windows")] == ["L10nEGDrivers.py", "Wifi_Driver.py", "X_W.json"]
    assert [handler.name for handler in select(files, "linux")] == ["L10nEGDrivers.py", "Wifi_Driver.py"]


@pytest.mark.parametrize(
    "platform, variant",
    [("linux", "linux"), ("windows", "windows"), ("test", "all"), ("unknown", "all"), (None, "all"), ("", "all")],
)
def test_variant_for(platform, variant):
    assert variant_for(platform) == variant


def test_fingerprint_follows_stat_changes(tmp_path):
    root = make_root(tmp_path)
    first = scan([str(root)]).fingerprint
    assert scan([str(root)]).fingerprint == first
    path = root / "interfaces" / "SerialInterface.py"
    os.utime(path, ns=(1, 1))
    touched = scan([str(root)]).fingerprint
    assert touched != first
    (root / "interfaces" / "New.py").write_text("new")
    added = scan([str(root)]).fingerprint
    assert added != touched
    (root / "interfaces" / "New.py").unlink()
    assert scan([str(root)]).fingerprint == touched


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Counting:
    def __init__(self, func):
        self.func = func
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return self.func(*args)


def make_cache():
    clock, scanner, builder = Clock(), Counting(scan), Counting(build_bundle)
    return BundleCache(scanner=scanner, builder=builder, clock=clock), clock, scanner, builder


def test_cache_serves_without_scanning_or_zipping(tmp_path):
    root = make_root(tmp_path)
    cache, clock, scanner, builder = make_cache()
    roots = Counting(lambda: [str(root)])
    first = cache.get("db", 1, roots, "linux")
    for __ in range(5):
        clock.now += 1
        assert cache.get("db", 1, roots, "linux") is first
    assert (roots.calls, scanner.calls, builder.calls) == (1, 1, 1)
    # One entry per variant, from the same scan.
    windows = cache.get("db", 1, roots, "windows")
    assert windows.digest != first.digest
    assert cache.get("db", 1, roots, "windows") is windows
    assert (scanner.calls, builder.calls) == (1, 2)


def test_cache_rechecks_after_the_delay_and_rebuilds_on_change(tmp_path):
    root = make_root(tmp_path)
    cache, clock, scanner, builder = make_cache()
    first = cache.get("db", 1, lambda: [str(root)])
    clock.now += cache.recheck_seconds
    assert cache.get("db", 1, lambda: [str(root)]) is first  # checked, unchanged: not rebuilt
    assert (scanner.calls, builder.calls) == (2, 1)
    (root / "drivers" / "PrinterDriver_L.py").write_bytes(b"# new linux printer\n")
    clock.now += 1
    assert cache.get("db", 1, lambda: [str(root)]) is first  # within the delay: not seen yet
    clock.now += cache.recheck_seconds
    changed = cache.get("db", 1, lambda: [str(root)])
    assert changed.digest != first.digest
    assert unzip(changed.data)["drivers/PrinterDriver_L.py"] == b"# new linux printer\n"
    assert (scanner.calls, builder.calls) == (3, 2)


def test_cache_new_key_means_new_roots(tmp_path):
    root = make_root(tmp_path)
    extra = make_root(tmp_path / "extra", {"drivers/Extra.py": b"extra"})
    cache, __, scanner, __ = make_cache()
    first = cache.get("db", 1, lambda: [str(root)])
    second = cache.get("db", 2, lambda: [str(root), str(extra)])
    assert "drivers/Extra.py" in second.entries
    assert "drivers/Extra.py" not in first.entries
    other_db = cache.get("db2", 1, lambda: [str(extra)])
    assert other_db.entries == ("drivers/Extra.py",)
    assert cache.get("db", 2, lambda: []) is second
    assert scanner.calls == 3
    cache.clear("db")
    assert cache.get("db", 2, lambda: [str(root)]).entries == first.entries


def test_cache_refuses_unknown_variant(tmp_path):
    cache = BundleCache()
    with pytest.raises(ValueError, match="unknown bundle variant"):
        cache.get("db", 1, lambda: [], "macos")
