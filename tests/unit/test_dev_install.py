"""`dev.py`'s install step keeps pip's chatter out of the way: one line saying what it
does, pip's output only when pip fails (then all of it, and dev.py stops)."""

import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import dev  # noqa: E402

NOISE = "Collecting aiohttp\nRequirement already satisfied: yarl\n[notice] A new release of pip is available"


def fake_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, fail_on: str = "") -> Path:
    """A .venv whose python plays pip: prints pip's usual noise, fails when asked to."""
    root = tmp_path / "repo"
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    py = root / ".venv" / "bin" / "python"
    py.write_text(f"""#!/bin/sh
echo "{NOISE}"
echo "WARNING: pip is noisy" >&2
case "$*" in *{fail_on or '@@never@@'}*) echo "ERROR: No matching distribution found for nosuchpkg" >&2; exit 1;; esac
exit 0
""")
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(dev, "ROOT", root)
    monkeypatch.setattr(dev, "VENV", root / ".venv")
    monkeypatch.setattr(dev, "PY", py)
    return root


def test_the_install_says_one_line_and_hides_pips_output(tmp_path, monkeypatch, capfd):
    root = fake_venv(tmp_path, monkeypatch)
    dev.ensure_venv("test")
    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1 and ".venv" in lines[0], lines
    assert "Collecting" not in out + err and "notice" not in out + err
    assert (root / ".venv" / ".installed").exists()
    dev.ensure_venv("test")  # installed already: silent
    out, err = capfd.readouterr()
    assert out + err == ""


def test_a_failed_install_shows_pips_errors_and_stops(tmp_path, monkeypatch, capfd):
    root = fake_venv(tmp_path, monkeypatch, fail_on="-e")
    with pytest.raises(SystemExit) as stopped:
        dev.ensure_venv("")
    out, err = capfd.readouterr()
    assert stopped.value.code not in (0, None)
    assert "No matching distribution found for nosuchpkg" in out + err
    assert not (root / ".venv" / ".installed").exists()
