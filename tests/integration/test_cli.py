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
    import sqlite3

    from social_mall.demo import CATALOG

    def products() -> int:
        with sqlite3.connect(tmp_path / "cli.db") as db:
            return int(db.execute("select count(*) from products").fetchone()[0])

    assert run(tmp_path, "migrate").returncode == 0
    first = run(tmp_path, "seed-demo")
    seeded = products()
    second = run(tmp_path, "seed-demo")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    # the core's catalog, plus what installed modules' showcases add (a bookable service…), once
    assert seeded == products() >= sum(len(items) for items in CATALOG.values()) == 20
    assert "demo" in first.stdout
    ok = run(tmp_path, "create-admin", "--username", "boss", "--password", "correct horse battery")
    assert ok.returncode == 0, ok.stderr
    assert "boss" in ok.stdout
    weak = run(tmp_path, "create-admin", "--username", "weak", "--password", "123")
    assert weak.returncode != 0

    db = sqlite3.connect(tmp_path / "cli.db")
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


def test_create_admin_refuses_a_weak_password_a_taken_name_or_an_unknown_shop_in_one_line(tmp_path):
    """Each refusal is one line on stderr and exit code 2, never a traceback, and no
    administrator is created or changed."""
    import sqlite3

    assert run(tmp_path, "migrate").returncode == 0
    assert run(tmp_path, "seed-demo").returncode == 0
    assert run(tmp_path, "create-admin", "--username", "boss", "--password", "correct horse battery").returncode == 0
    db = sqlite3.connect(tmp_path / "cli.db")
    before = db.execute("select id, username, password_hash, role from admins order by id").fetchall()

    refusals = {
        "short": run(tmp_path, "create-admin", "--username", "weak", "--password", "123"),
        "taken": run(tmp_path, "create-admin", "--username", "boss", "--password", "another long passphrase"),
        "tenant": run(tmp_path, "create-admin", "--username", "x_boss", "--tenant", "nosuch",
                      "--password", "another long passphrase"),
        "name": run(tmp_path, "create-admin", "--username", "a b", "--password", "another long passphrase"),
    }
    for why, proc in refusals.items():
        assert proc.returncode == 2, (why, proc.stderr)
        assert "Traceback" not in proc.stderr, (why, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("create-admin: "), (why, proc.stderr)
    assert "10" in refusals["short"].stderr and "--password" in refusals["short"].stderr
    assert "boss" in refusals["taken"].stderr and "exists" in refusals["taken"].stderr
    assert "nosuch" in refusals["tenant"].stderr
    assert "username" in refusals["name"].stderr
    assert db.execute("select id, username, password_hash, role from admins order by id").fetchall() == before


def test_create_admin_reads_the_password_from_the_prompt(tmp_path):
    assert run(tmp_path, "migrate").returncode == 0
    assert run(tmp_path, "seed-demo").returncode == 0
    ok = run(tmp_path, "create-admin", "--username", "prompted", stdin="a long typed passphrase\n")
    assert ok.returncode == 0, ok.stderr
    short = run(tmp_path, "create-admin", "--username", "prompted2", stdin="short\n")
    assert short.returncode == 2 and "Traceback" not in short.stderr
