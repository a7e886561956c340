"""The CLI on a fresh SQLite file: migrate, seed the demo (twice), create an admin."""

import os
import subprocess
import sys
from pathlib import Path

from social_mall.plugins import ENTRY_POINT_GROUP, Module, discover

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOCIAL_MALL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
           "SOCIAL_MALL_DATA_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, str(ROOT / "bot.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, input=stdin)


def test_migrate_seed_and_create_admin(tmp_path):
    assert run(tmp_path, "migrate").returncode == 0
    first = run(tmp_path, "seed-demo")
    second = run(tmp_path, "seed-demo")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "demo" in first.stdout
    ok = run(tmp_path, "create-admin", "--username", "boss", "--password", "correct horse battery")
    assert ok.returncode == 0, ok.stderr
    assert "boss" in ok.stdout
    weak = run(tmp_path, "create-admin", "--username", "weak", "--password", "123")
    assert weak.returncode != 0

    import sqlite3

    db = sqlite3.connect(tmp_path / "cli.db")
    assert db.execute("select count(*) from products").fetchone() == (20,)
    assert db.execute("select count(*) from tenants").fetchone() == (1,)
    username, hashed, role = db.execute("select username, password_hash, role from admins").fetchone()
    assert (username, role) == ("boss", "owner")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed


def test_third_party_modules_load_through_the_entry_point_group(monkeypatch):
    third = Module("loyalty", lambda reg: None)

    class EP:
        name = "loyalty"

        def load(self):
            return third

    def fake_entry_points(group: str):
        assert group == ENTRY_POINT_GROUP
        return [EP()]

    monkeypatch.setattr("social_mall.plugins.entry_points", fake_entry_points)
    builtin = [Module("shop", lambda reg: None)]
    assert [m.name for m in discover(builtin)] == ["shop", "loyalty"]


def test_an_unknown_command_fails_with_usage(tmp_path):
    """An unknown command is an error with usage, not a silent exit 0."""
    proc = run(tmp_path, "no-such-command")
    assert proc.returncode == 2
    assert "usage" in proc.stderr
