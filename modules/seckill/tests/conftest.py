"""The core suite's fixtures (both backends, the real app against fakes of WeChat's
servers) for the module's tests: sqlite + memory KV and PostgreSQL + Redis alike.

Where the package is not installed the tests are not collected (the core's suite runs
alone); with CI set, a missing package is an error."""

import importlib.util
import os

from tests.conftest import *  # noqa: F401,F403  (fixtures: backend, engine, kv, uows, other_worker, mall…)

if importlib.util.find_spec("social_mall_seckill") is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI: the seckill module package is not installed (python3 dev.py test installs it)")
    collect_ignore_glob = ["test_*.py"]
