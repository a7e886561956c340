"""`mypy --strict` over the module package (its pyproject's [tool.mypy]), in the suite
like the core's check. Imports into the core are followed silently: the core's own
check covers it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parents[1]          # the repository: the core's packages resolve from there


def test_the_module_passes_mypy_strict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(ROOT / ".mypy_cache" / "modules"),
         str(PACKAGE / "social_mall_bargain")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
