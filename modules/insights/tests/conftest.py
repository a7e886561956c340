"""The core suite's fixtures (both backends, the real app against fakes of WeChat's
servers) for the module's tests: sqlite + memory KV and PostgreSQL + Redis alike.

The tests belong to the package: where it is not installed (a shop running without the
module), they are not collected, so the core's suite runs alone; with CI set, a missing
package is an error (dev.py installs it with the project)."""

import importlib.util
import os

from tests.conftest import *  # noqa: F401,F403  (fixtures: backend, engine, kv, uows, other_worker, mall…)

if importlib.util.find_spec("social_mall_insights") is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI: the insights module package is not installed (python3 dev.py test installs it)")
    collect_ignore_glob = ["test_*.py"]
