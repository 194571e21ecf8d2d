# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""``./dev setup --get-odoo`` end to end, on a machine without Odoo, against a local
Git repository standing in for Odoo's.

- The stand-in: a bare repository whose branch ``18.0`` holds one commit of the Odoo
  tree this test run uses (found through ``odoo``), all of it: Odoo's ``base`` refers
  to the categories of every addon, so a tree with only the addons iot_update needs
  does not install. Its objects are stored and packed without compression or delta
  search, so that making it and cloning it cost about half a minute, not minutes.
- The machine: a scratch copy of the project's tracked files (the work tree's, so
  uncommitted changes count) with a ``.venv`` that does not see the system's packages,
  so no ``odoo`` is importable; ``./dev`` runs with that venv's Python. ``./dev setup``
  would create the same venv with ``--system-site-packages``, which on a machine whose
  Python imports an Odoo would find that one.
- Then ``./dev setup --get-odoo`` with ``IOT_UPDATE_ODOO_REPO`` naming the stand-in:
  the shallow clone into the ignored ``.dev/odoo-18.0``, Odoo's requirements installed
  into the venv by pip (its index and cache, as on a new machine), Odoo made
  importable from the clone, a database with iot_update installed by the clone's
  ``odoo-bin``.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2

import odoo
from odoo.sql_db import connection_info_for
from odoo.tools import config

ROOT = Path(__file__).resolve().parents[2]
ODOO_ROOT = Path(odoo.__file__).resolve().parent.parent


def git(*args, cwd=None, **kwargs):
    command = ["git", "-c", "user.name=iot_update tests", "-c", "user.email=tests@iot-update.invalid", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True, **kwargs).stdout


def stand_in_repository(path):
    """A bare repository whose branch 18.0 holds the Odoo tree in use (see above)."""
    git("init", "-q", "--bare", str(path))
    git("config", "pack.window", "0", cwd=path)  # no delta search when the clone is packed
    git("config", "pack.compression", "0", cwd=path)
    tree = ["--git-dir", str(path), "--work-tree", str(ODOO_ROOT), "-c", "core.bare=false"]
    git(*tree, "-c", "core.looseCompression=0", "add", "-A", ".", cwd=ODOO_ROOT)  # Odoo's .gitignore applies
    git(*tree, "commit", "-q", "-m", "Odoo 18.0 (the tree the tests use)", cwd=ODOO_ROOT)
    git("--git-dir", str(path), "branch", "-M", "18.0")
    return path


def scratch_project(path):
    """The project's tracked files (as in the work tree) committed in ``path``, a new git repository."""
    listed = git("ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, path / name)
    git("init", "-q", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "the project", cwd=path)
    return path


def drop_database(name):
    __, info = connection_info_for("postgres")
    connection = psycopg2.connect(**info)
    connection.autocommit = True
    try:
        with connection.cursor() as cr:
            cr.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


def module_state(database, module):
    __, info = connection_info_for(database)
    connection = psycopg2.connect(**info)
    try:
        with connection.cursor() as cr:
            cr.execute("SELECT state FROM ir_module_module WHERE name = %s", [module])
            row = cr.fetchone()
    finally:
        connection.close()
    return row and row[0]


def test_get_odoo_sets_up_a_machine_without_odoo():
    work = Path(tempfile.mkdtemp(prefix="iot_update_get_odoo_"))
    database = f"{config['db_name'] or 'iot_update_test'}_get_odoo"
    try:
        remote = stand_in_repository(work / "odoo.git")
        project = scratch_project(work / "project")
        base_python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base_python, "-m", "venv", str(project / ".venv")], check=True)
        venv_python = project / ".venv" / "bin" / "python"
        importable = subprocess.run([venv_python, "-c", "import odoo"], capture_output=True, check=False)
        assert importable.returncode != 0, "the scratch machine must start without an importable Odoo"

        env = {
            name: value
            for name, value in os.environ.items()
            if name not in ("PYTHONPATH", "ODOO_PATH", "VIRTUAL_ENV", "ODOO_RC")
        }
        env.update(
            IOT_UPDATE_ODOO_REPO=f"file://{remote}",
            IOT_UPDATE_TEST_DB=database,
            IOT_UPDATE_DEMO_DB=f"{database}_demo",
        )
        drop_database(database)
        result = subprocess.run(
            [venv_python, project / "dev", "setup", "--get-odoo"],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]

        clone = project / ".dev" / "odoo-18.0"
        assert f"fetching Odoo 18.0 from file://{remote}" in output
        assert (clone / "odoo" / "release.py").is_file()
        assert git("rev-parse", "--is-shallow-repository", cwd=clone).strip() == "true"
        assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=clone).strip() == "18.0"
        assert git("log", "--format=%s", cwd=clone).splitlines() == ["Odoo 18.0 (the tree the tests use)"]
        # In the ignored state folder: nothing of Odoo's can be committed.
        assert git("status", "--porcelain", "--untracked-files=all", cwd=project).strip() == ""
        assert git("check-ignore", ".dev/odoo-18.0/odoo-bin", cwd=project).strip() == ".dev/odoo-18.0/odoo-bin"

        # Used: remembered, imported by the venv, on the addons path of the config.
        assert (project / ".dev" / "odoo-path").read_text().strip() == str(clone)
        where = subprocess.run(
            [venv_python, "-c", "import odoo, os; print(os.path.realpath(odoo.__file__))"],
            capture_output=True,
            text=True,
            check=True,
            cwd=work,
        ).stdout.strip()
        assert where == str((clone / "odoo" / "__init__.py").resolve())
        conf = (project / ".dev" / "odoo.conf").read_text()
        assert f"addons_path = {clone / 'addons'},{project}\n" in conf
        assert str(ODOO_ROOT) not in conf

        assert f"installing iot_update in database {database}" in output
        assert module_state(database, "iot_update") == "installed"
    finally:
        drop_database(database)
        shutil.rmtree(work, ignore_errors=True)
