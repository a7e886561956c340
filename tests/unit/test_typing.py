"""`mypy --strict` over the typed packages (pyproject's [tool.mypy] files), as part of the
suite: the chat path's `@value` classes are frozen to the type checker only
(social_mall/values.py), so this check is what keeps them unchanged after they are made."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TYPED = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]["files"]

PROBE = '''
from flows.engine import Conv
from flows.types import Inbound, Kind

conv = Conv("shop", "idle", {})
conv.state = "browse"
inbound = Inbound(1, "demo", "mp", "o_user", Kind.TEXT, "分类")
inbound.text = "买 1"
'''


def mypy(*targets: str, cache: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), *targets],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_typed_packages_pass_mypy_strict_and_value_fields_are_read_only(tmp_path: Path) -> None:
    """One run: the packages are clean, and the probe's two assignments to `@value`
    fields are the only errors."""
    probe = tmp_path / "probe_values.py"
    probe.write_text(PROBE, encoding="utf-8")
    status, out = mypy(*TYPED, str(probe), cache=tmp_path / "mypy_cache")
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, out
    assert len(errors) == 2, out
    assert all(line.startswith(str(probe)) and "read-only" in line for line in errors), out
