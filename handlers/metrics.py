"""Prometheus metrics: what is counted, and the `/metrics` route.

Counted where it happens: requests by route template and status, and their latency
(bot.with_request_id, every route); the official account's answers by mode (passive reply,
push fallback past the reply budget, "success" for a repeat, 503 on an outage); scheduled job
runs by outcome (on the worker that leads); payment notifies by verdict. Read at scrape
time from the database: the outbox's backlog (rows due) and lag (age of the oldest due row).

Many workers (`bot.py serve --workers N`) write their samples to files in
PROMETHEUS_MULTIPROC_DIR (the supervisor sets one up), and a scrape, whichever worker
answers it, adds up every worker's files (prometheus_client's multiprocess mode).

`/metrics` is closed unless METRICS_TOKEN is set; then a scrape sends it as
`Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: …}`). Put it
behind the admin network as well (docs/deploy.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from handlers.context import SERVICES
from social_mall.parsing import same_secret

routes = web.RouteTableDef()

REQUESTS = Counter("social_mall_http_requests_total", "HTTP requests answered, by route template and status",
                   ["route", "status"])
LATENCY = Histogram("social_mall_http_request_seconds", "Time to answer, by route template", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.0, 5.0, 10.0))
WECHAT_ANSWERS = Counter("social_mall_wechat_answers_total",
                         "Official-account messages by how they were answered: passive (a reply in the "
                         "response), push (past the reply budget: success, then a customer-service push), "
                         "repeat (a retry of a handled message: success), unavailable (503: WeChat retries)",
                         ["mode"])
JOB_RUNS = Counter("social_mall_job_runs_total", "Scheduled job runs on the leading worker, by outcome",
                   ["job", "outcome"])
PAY_NOTIFIES = Counter("social_mall_pay_notifies_total", "Payment notifies by verdict", ["verdict"])


def observe(route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, str(status)).inc()
    LATENCY.labels(route).observe(seconds)


def metered_job(name: str, run: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
    async def job() -> object:
        try:
            result = await run()
        except Exception:
            JOB_RUNS.labels(name, "error").inc()
            raise
        JOB_RUNS.labels(name, "ok").inc()
        return result

    return job


def _collect() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    token = svc.settings.metrics_token.get_secret_value()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token or not same_secret(given, token):
        raise web.HTTPNotFound()
    body = _collect()
    now = svc.clock()
    async with svc.uows() as uow:
        due, oldest = await uow.outbox.backlog(now)
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    body += (
        "# HELP social_mall_outbox_due Outbox rows due for delivery now\n# TYPE social_mall_outbox_due gauge\n"
        f"social_mall_outbox_due {due}\n"
        "# HELP social_mall_outbox_lag_seconds Age of the oldest due outbox row\n"
        "# TYPE social_mall_outbox_lag_seconds gauge\n"
        f"social_mall_outbox_lag_seconds {lag:.3f}\n"
    ).encode()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def clock() -> float:
    return time.perf_counter()
