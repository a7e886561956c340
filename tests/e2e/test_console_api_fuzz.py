"""Schemathesis against /api/v1/openapi.json on the app served on a loopback port: no
generated request may end in a 500. Bounded: 50 examples per operation, a fixed seed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import app_settings
from tests.fakes.console_kit import ServedMall, csrf_of, make_admin, paid_order

ST = Path(sys.executable).parent / "st"
#: the operations that take ids, filters and bodies (a bounded run; the rest share their code paths)
OPERATIONS = ("listOrders", "getOrder", "shipOrder", "refundOrder", "listProducts", "createProduct", "updateSku",
              "getProduct", "updateProduct", "getMember", "listMembers", "listAudit", "createCategory")


@pytest.fixture
def served(backend, tmp_path):
    mall = ServedMall(lambda fake_url: app_settings(backend, tmp_path, fake_url))
    mall.start(truncate_pg=backend.name == "pg")
    yield mall
    mall.stop()


def token_for(served) -> str:
    import aiohttp

    from tests.fakes.console_kit import PASSWORD, issue_token

    class Client:  # the helpers speak the aiohttp test client's relative-URL dialect
        def __init__(self, session):
            self.session = session

        def get(self, path, **kw):
            return self.session.get(served.url + path, **kw)

        def post(self, path, **kw):
            return self.session.post(served.url + path, **kw)

    async def go():
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            from tests.fakes.console_kit import login

            csrf = await login(Client(session), "api_owner", PASSWORD)
            return await issue_token(Client(session), csrf, "fuzz")

    served.run(make_admin(served.svc.uows, "api_owner"))
    tenant = served.run(served.svc.tenant("demo"))
    for i in range(2):
        served.run(paid_order(served.svc.uows, tenant.id, f"oFuzz_buyer_{i:016d}"))
    return served.run(go())


def test_schemathesis_finds_no_server_error(served, tmp_path):
    token = token_for(served)
    cmd = [str(ST), "run", f"{served.url}/api/v1/openapi.json", "--url", served.url,
           "-c", "not_a_server_error", "-H", f"Authorization: Bearer {token}", "-n", "50", "--seed", "1",
           "--phases", "coverage,fuzzing", "--generation-database", "none", "--request-timeout", "10",
           "--no-color"]
    for op in OPERATIONS:
        cmd += ["--include-operation-id", op]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-4000:]
    assert f"Tested: {len(OPERATIONS)}" in report
