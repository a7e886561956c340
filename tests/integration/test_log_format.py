"""Log lines on a terminal are for people, in a pipe for machines: with LOG_FORMAT `auto`
(the default) `bot.py` writes readable lines when stderr is a TTY and JSON otherwise."""

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def migrate(tmp_path: Path, *, tty: bool, **env: str) -> list[str]:
    """The lines `bot.py migrate` logs, with stderr a pseudo-terminal or a pipe."""
    full = {**os.environ, "SOCIAL_MALL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
            "SOCIAL_MALL_DATA_DIR": str(tmp_path / "var"), **env}
    if "SOCIAL_MALL_LOG_FORMAT" not in env:
        full.pop("SOCIAL_MALL_LOG_FORMAT", None)
    tmp_path.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "bot.py"), "migrate"]
    if not tty:
        proc = subprocess.run(cmd, env=full, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return [line for line in proc.stderr.splitlines() if line.strip()]
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=full, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return [line for line in b"".join(chunks).decode().splitlines() if line.strip()]


def is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_a_terminal_gets_readable_lines_and_a_pipe_gets_json(tmp_path):
    on_tty = migrate(tmp_path / "a", tty=True)
    assert on_tty and not any(is_json(line) for line in on_tty), on_tty[:3]
    upgrade = next(line for line in on_tty if "Running upgrade" in line)
    # "12:34:56 info  Running upgrade  -> 0001, initial schema": time, level, the event
    time_part, level, *_ = upgrade.split()
    assert len(time_part) == 8 and time_part.count(":") == 2 and level == "info", upgrade
    assert '"event"' not in upgrade and "request_id" not in upgrade

    piped = migrate(tmp_path / "b", tty=False)
    assert piped and all(is_json(line) for line in piped), piped[:3]
    assert json.loads(piped[0])["level"] == "info"


def test_an_explicit_format_wins_over_the_terminal(tmp_path):
    lines = migrate(tmp_path, tty=True, SOCIAL_MALL_LOG_FORMAT="json")
    assert lines and all(is_json(line) for line in lines)
