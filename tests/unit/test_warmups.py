"""The registry's warm-up seam: what a module loads once when a worker starts runs before
the app serves, in a thread (the loop stays free), and a failing one is logged without
stopping the worker."""

from __future__ import annotations

import threading

from social_mall.plugins import Registry


def test_a_warmup_is_kept_in_the_order_given() -> None:
    reg = Registry(services=None)
    first, second = (lambda: None), (lambda: None)
    reg.add_warmup("a", first)
    reg.add_warmup("b", second)
    assert reg.warmups == [("a", first), ("b", second)]


async def test_the_app_runs_each_warmup_in_a_thread_at_start_and_survives_a_failing_one(
        tmp_path, aiohttp_client, caplog) -> None:
    from bot import build_app
    from handlers.context import SERVICES
    from tests.conftest import Backend, app_settings

    app = build_app(app_settings(Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", ""), tmp_path,
                                 "http://127.0.0.1:9"), auto_setup=True)
    ran: list[str] = []
    main = threading.get_ident()

    def fine() -> None:
        ran.append("fine" if threading.get_ident() != main else "fine-on-the-loop")

    def broken() -> None:
        raise RuntimeError("dictionary missing")

    registry = app[SERVICES].registry
    registry.add_warmup("test.broken", broken)
    registry.add_warmup("test.fine", fine)
    client = await aiohttp_client(app)
    assert ran == ["fine"]                                   # ran off the loop, after the broken one
    assert any(r.getMessage() == "app.warmup_failed" for r in caplog.records)
    assert (await client.get("/healthz")).status == 200      # the worker serves anyway

