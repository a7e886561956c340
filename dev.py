#!/usr/bin/env python3
"""Set-up and run helper: the two commands README.md gives.

    python3 dev.py run    # install into .venv, then start the bot on the embedded default
    python3 dev.py test   # install into .venv (with test extras), then run the whole suite

Only the standard library is used here, so it works on a fresh machine with Python 3.11+.
The module packages under modules/ (each with its own pyproject.toml, found through the
entry-point group `social_mall.modules`) are installed with the project. The virtual
environment is rebuilt when any of those pyproject.toml files changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"

# The commands the machine's own services start with (see the env skill's machine page).
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def quiet(cmd: list[str], what: str) -> None:
    """Run a set-up step with its output held back; when it fails, show all of it and stop."""
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise SystemExit(f"dev.py: {what} failed (exit {proc.returncode}); pip's output is above.")


def module_packages() -> list[Path]:
    """The module packages shipped with the project: modules/<name>/pyproject.toml."""
    return sorted(p.parent for p in (ROOT / "modules").glob("*/pyproject.toml"))


def ensure_venv(extras: str) -> None:
    stamp_src = (ROOT / "pyproject.toml").read_bytes() + extras.encode()
    for package in module_packages():
        stamp_src += package.name.encode() + (package / "pyproject.toml").read_bytes()
    stamp = hashlib.sha256(stamp_src).hexdigest()
    marker = VENV / ".installed"
    if PY.exists() and marker.exists() and marker.read_text() == stamp:
        return
    tools = " with the test tools" if extras else ""
    print(f"Installing social_mall{tools} into .venv (first run, or pyproject.toml changed): "
          "this can take a minute…", flush=True)
    if not PY.exists():
        quiet([sys.executable, "-m", "venv", str(VENV)], "creating .venv")
    pip = [str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input"]
    quiet([*pip, "--upgrade", "pip"], "upgrading pip")
    target = f".[{extras}]" if extras else "."
    quiet([*pip, "-e", target], "installing social_mall")
    for package in module_packages():
        quiet([*pip, "-e", str(package.relative_to(ROOT))], f"installing the module package {package.name}")
    marker.write_text(stamp)


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def ensure_service(name: str, port: int, start: str) -> bool:
    if reachable(port):
        return True
    if shutil.which(start.split()[0]) is None:
        print(f"{name}: not running and not installed here", flush=True)
        return False
    print(f"{name}: not running, starting it", flush=True)
    subprocess.run(start, shell=True, check=False)
    for _ in range(30):
        if reachable(port):
            return True
        time.sleep(0.5)
    return False


def ensure_chromium() -> None:
    """Browser tests drive Debian's chromium; install it when missing (never a download)."""
    if Path("/usr/bin/chromium").exists():
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-q"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False)


def cmd_run(args: list[str]) -> int:
    ensure_venv("")
    os.execv(str(PY), [str(PY), str(ROOT / "bot.py"), "serve", *args])
    return 0  # not reached


def parallel(args: list[str]) -> list[str]:
    """One pytest worker per core (pytest-xdist), each test file kept on one worker so its
    module fixtures start once. Every worker has its own PostgreSQL schema and Redis key
    prefix (tests/conftest.py). `-n 0` (or any `-n`) on the command line decides instead."""
    if any(a == "-n" or a.startswith("-n") or a.startswith("--numprocesses") for a in args):
        return []
    return ["-n", "auto", "--dist", "loadfile"]


def cmd_test(args: list[str]) -> int:
    ensure_venv("test")
    ensure_chromium()
    in_ci = bool(os.environ.get("CI"))
    pg = ensure_service("PostgreSQL", 5432, PG_START)
    rd = ensure_service("Redis", 6379, REDIS_START)
    if in_ci and not (pg and rd):
        print("CI: PostgreSQL and Redis must be reachable; failing.", flush=True)
        return 2
    env = dict(os.environ)
    env.setdefault("SOCIAL_MALL_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    env.setdefault("SOCIAL_MALL_TEST_REDIS", "redis://127.0.0.1:6379/15")
    proc = subprocess.run([str(PY), "-m", "pytest", "-q", "--durations=15", *parallel(args), *args], cwd=ROOT, env=env)
    if proc.returncode == 5:
        print("no tests ran: failing", flush=True)
        return 1
    return proc.returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print(__doc__)
        return 2
    handler = cmd_run if sys.argv[1] == "run" else cmd_test
    return handler(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
