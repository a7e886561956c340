"""The core suite's fixtures (both backends, the real app against fakes of WeChat's
servers) for the module's tests: sqlite + memory KV and PostgreSQL + Redis alike."""

from tests.conftest import *  # noqa: F401,F403  (fixtures: backend, engine, kv, uows, other_worker, mall…)
