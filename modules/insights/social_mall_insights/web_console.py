"""The module's console pages (/console/insights/…): funnel, retention cohorts, LTV, RFM,
attribution (each also as CSV `?format=csv` and JSON `?format=json`), segments, campaigns,
settings; and the member page's timeline (the console's member-panel seam). Every handler
is guarded by `console_view` (session, CSRF on POST, permission, the admin's tenant)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from handlers.console.core import SECURITY_HEADERS, console_view, render, services, tenant_of
from handlers.console.registry import add_console_page, add_console_permission, add_member_panel
from social_mall.plugins import Registry
from social_mall_insights import HERE, charts, reports
from social_mall_insights.rules import ACQ_ZH, CHANNEL_ZH, SHANGHAI, shanghai_day

routes = web.RouteTableDef()

VIEW, PUSH = "insights.view", "insights.push"
CSS = (HERE / "static" / "insights.css").read_text(encoding="utf-8")


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="insights", title="数据洞察", path="/console/insights", perm=VIEW, order=15,
                     module="insights")
    add_console_permission(reg, VIEW, ("admin", "operator", "finance"))
    add_console_permission(reg, PUSH, ("admin", "operator"))
    add_member_panel(reg, timeline_panel)


async def timeline_panel(request: Any, tenant: int, member: int) -> tuple[str, Mapping[str, Any]] | None:
    async with services(request).uows() as uow:
        items = await reports.timeline(uow, tenant, member)
    return "console/insights/_timeline.html", {"items": items, "yuan": reports.yuan, "channels": CHANNEL_ZH,
                                               "when": lambda at: at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")}


@routes.get("/console/insights/static/insights.css")
async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(text=CSS, content_type="text/css", headers={"Cache-Control": "max-age=3600"})


# -- output formats ---------------------------------------------------------------------------

def _fmt(request: web.Request) -> str:
    f = request.query.get("format", "")
    return f if f in ("csv", "json") else "html"


def _csv(filename: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> web.Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow([_cell(v) for v in r])
    return web.Response(body=("\ufeff" + buf.getvalue()).encode(), headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"',
        **SECURITY_HEADERS})


def _cell(v: object) -> str:
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@") and not _number(s) else s   # no spreadsheet formulas


def _number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _json(data: object) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), content_type="application/json",
                        headers=SECURITY_HEADERS)


def _days(request: web.Request, default: int = 30) -> int:
    raw = request.query.get("days", "")
    return int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 366 else default


def _pct(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


# -- funnel --------------------------------------------------------------------------------

@routes.get("/console/insights")
@console_view(VIEW)
async def funnel_page(request: web.Request) -> web.Response:
    svc = services(request)
    days = _days(request)
    last = shanghai_day(svc.clock())
    first = last - timedelta(days=days - 1)
    async with svc.uows() as uow:
        dims = await reports.funnel(uow, tenant_of(request), first, last)
        channel = request.query.get("channel", "")
        source = request.query.get("source", "")
        channel = channel if channel in dims.channels else ""
        source = source if source in dims.sources else ""
        f = dims if not (channel or source) else await reports.funnel(
            uow, tenant_of(request), first, last, channel=channel, source=source)
    names = [n for _, n in reports.STAGES]
    fmt = _fmt(request)
    if fmt == "json":
        return _json({"from": first, "to": last, "channel": channel, "source": source, "stages": names,
                      "days": [{"day": r.day, "members": list(r.counts), "rates": [_pct(x) for x in r.rates],
                                "paid_fen": r.paid_fen} for r in f.rows],
                      "total": {"members": list(f.total.counts), "rates": [_pct(x) for x in f.total.rates],
                                "paid_fen": f.total.paid_fen}})
    if fmt == "csv":
        return _csv("funnel.csv", ["日期", *names, "浏览/访问", "加购/浏览", "下单/加购", "支付/下单", "支付/访问", "支付金额(分)"],
                    [[r.day, *r.counts, *[reports.percent(x) for x in r.rates[1:]], r.paid_fen] for r in f.rows])
    chart = charts_funnel(names, f.total.counts)
    return render(request, "console/insights/funnel.html", f=f, names=names, days=days, channel=channel,
                  source=source, chart=chart, pct=reports.percent, yuan=reports.yuan, channels=CHANNEL_ZH,
                  acq=ACQ_ZH, tab="funnel")


def charts_funnel(names: Sequence[str], counts: Sequence[int]) -> str:
    from handlers.console.charts import bar_chart

    return bar_chart(list(names), list(counts), title="转化漏斗（人·天）")


# -- cohorts -------------------------------------------------------------------------------

@routes.get("/console/insights/cohorts")
@console_view(VIEW)
async def cohorts_page(request: web.Request) -> web.Response:
    svc = services(request)
    basis = "visit" if request.query.get("basis") == "visit" else "order"
    async with svc.uows() as uow:
        rows = await reports.cohorts(uow, tenant_of(request), svc.clock(), basis=basis)
    weeks = list(reports.weeks_header(12))
    fmt = _fmt(request)
    if fmt == "json":
        return _json({"basis": basis, "cohorts": [{"week": c.week, "size": c.size, "rates": [_pct(x) for x in c.rates]}
                                                  for c in rows]})
    if fmt == "csv":
        return _csv("cohorts.csv", ["首单周" if basis == "order" else "首访周", "人数", *weeks],
                    [[c.week, c.size, *[reports.percent(x) for x in c.rates]] for c in rows])
    return render(request, "console/insights/cohorts.html", rows=rows, weeks=weeks, basis=basis,
                  pct=reports.percent, heat=charts.heat_class, tab="cohorts")


# -- LTV -----------------------------------------------------------------------------------

@routes.get("/console/insights/ltv")
@console_view(VIEW)
async def ltv_page(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        rows = await reports.ltv(uow, tenant_of(request), svc.clock())
    heads = [f"{h}天" for h in reports.HORIZONS]
    fmt = _fmt(request)
    if fmt == "json":
        return _json({"horizons": list(reports.HORIZONS), "rows": [
            {"cohort": r.cohort, "acquisition": r.acq or "all", "members": r.members, "avg_fen": list(r.avg),
             "median_fen": list(r.med), "counted": list(r.counted)} for r in rows]})
    if fmt == "csv":
        return _csv("ltv.csv", ["首单月", "来源", "人数", *[f"平均{h}(分)" for h in heads], *[f"中位{h}(分)" for h in heads]],
                    [[r.cohort, ACQ_ZH.get(r.acq, "全部"), r.members, *r.avg, *r.med] for r in rows])
    overall = {ACQ_ZH.get(r.acq, "全部"): list(r.avg) for r in rows if r.cohort == "全部"}
    chart = charts.line_chart(heads, overall, title="平均 LTV（首单后累计净收入）")
    return render(request, "console/insights/ltv.html", rows=rows, heads=heads, chart=chart, yuan=reports.yuan,
                  acq=ACQ_ZH, tab="ltv")


# -- RFM -----------------------------------------------------------------------------------

@routes.get("/console/insights/rfm")
@console_view(VIEW)
async def rfm_page(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        segs = await reports.rfm(uow, tenant_of(request), svc.clock())
    fmt = _fmt(request)
    if fmt == "json":
        return _json({"segments": [{"name": s.name, "members": s.members, "revenue_fen": s.revenue_fen}
                                   for s in segs]})
    if fmt == "csv":
        return _csv("rfm.csv", ["分群", "人数", "净收入(分)"], [[s.name, s.members, s.revenue_fen] for s in segs])
    from handlers.console.charts import bar_chart

    chart = bar_chart([s.name for s in segs], [s.members for s in segs], title="RFM 分群人数")
    return render(request, "console/insights/rfm.html", segs=segs, chart=chart, yuan=reports.yuan, tab="rfm")


# -- attribution ---------------------------------------------------------------------------

@routes.get("/console/insights/attribution")
@console_view(VIEW)
async def attribution_page(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        a = await reports.attribution(uow, tenant_of(request))
    groups = {"kinds": a.kinds, "scenes": a.scenes, "distributors": a.distributors, "groupbuy": a.campaigns}
    fmt = _fmt(request)
    if fmt == "json":
        return _json({k: [{"key": x.key, "label": x.label, "members": x.members, "buyers": x.buyers,
                           "revenue_fen": x.revenue_fen} for x in v] for k, v in groups.items()})
    if fmt == "csv":
        return _csv("attribution.csv", ["类别", "来源", "名称", "会员", "购买会员", "净收入(分)"],
                    [[k, x.key, x.label, x.members, x.buyers, x.revenue_fen] for k, v in groups.items() for x in v])
    return render(request, "console/insights/attribution.html", a=a, yuan=reports.yuan, tab="attribution")


def today(svc: Any) -> date:
    return shanghai_day(svc.clock())
