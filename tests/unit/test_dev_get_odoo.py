# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""`./dev setup --get-odoo`: the shallow clone of Odoo's 18.0 branch, run against a local
Git repository standing in for Odoo's (the URL is overridable with IOT_UPDATE_ODOO_REPO)."""

import importlib.machinery
import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_dev():
    loader = importlib.machinery.SourceFileLoader("iot_update_dev", str(ROOT / "dev"))
    spec = importlib.util.spec_from_loader("iot_update_dev", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


dev = load_dev()


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def fake_odoo_repo(path, serie="18.0", branch="18.0"):
    """A tiny repository shaped like Odoo's: odoo/release.py, odoo-bin, requirements.txt,
    with two commits on ``branch`` (a shallow clone must hold only the last one)."""
    (path / "odoo").mkdir(parents=True)
    git("init", "-q", "-b", branch, cwd=path)
    (path / "odoo" / "release.py").write_text("serie = '16.0'\n")
    (path / "odoo-bin").write_text("#!/usr/bin/env python3\n")
    (path / "requirements.txt").write_text("")
    git("add", "-A", cwd=path)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "older", cwd=path)
    (path / "odoo" / "release.py").write_text(f"serie = {serie!r}\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "newest", cwd=path)
    return path


def test_clones_the_18_0_branch_shallow_and_recognizes_an_odoo_tree(tmp_path, monkeypatch):
    remote = fake_odoo_repo(tmp_path / "remote")
    monkeypatch.setenv("IOT_UPDATE_ODOO_REPO", f"file://{remote}")
    dest = tmp_path / "state" / "odoo-18.0"

    assert dev.get_odoo(dest=dest) == dest

    assert dev.is_odoo_tree(dest)
    assert dev.odoo_series(dest) == "18.0"
    log = subprocess.run(["git", "log", "--format=%s"], cwd=dest, capture_output=True, text=True, check=True)
    assert log.stdout.split() == ["newest"]  # shallow: one commit
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=dest, capture_output=True, text=True, check=True)
    assert branch.stdout.strip() == "18.0"
    # found again as the Odoo to use, without a second clone
    (remote / "odoo-bin").unlink()
    assert dev.get_odoo(dest=dest) == dest


def test_default_source_is_odoos_repository_in_the_state_folder(monkeypatch):
    monkeypatch.delenv("IOT_UPDATE_ODOO_REPO", raising=False)
    assert dev.odoo_repo() == "https://github.com/odoo/odoo"
    assert dev.ODOO_CLONE == ROOT / ".dev" / "odoo-18.0"
    assert ".dev" in (ROOT / ".gitignore").read_text()


def test_unreachable_source_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("IOT_UPDATE_ODOO_REPO", str(tmp_path / "nowhere"))
    dest = tmp_path / "odoo-18.0"
    with pytest.raises(dev.SetupError, match=r"cannot fetch Odoo 18\.0 from .*nowhere.*--odoo PATH"):
        dev.get_odoo(dest=dest)
    assert not dest.exists()


def test_a_branch_that_is_not_odoo_18_0_is_refused(tmp_path):
    remote = fake_odoo_repo(tmp_path / "remote", serie="17.0")
    with pytest.raises(dev.SetupError, match=r"holds Odoo 17\.0, not 18\.0"):
        dev.get_odoo(repo=str(remote), dest=tmp_path / "clone")
