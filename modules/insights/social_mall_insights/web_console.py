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

from handlers.console.core import SECURITY_HEADERS, admin_of, console_view, render, services, tenant_of
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
        scenes = await reports.entry_scenes(uow, tenant_of(request))
        scene = request.query.get("scene", "")
        scene = scene if scene in {s for s, _ in scenes} else ""
        if scene:   # the members who came through one QR scene or link (channel and kind don't apply)
            channel = source = ""
            f = await reports.scene_funnel(uow, tenant_of(request), first, last, scene)
    names = [n for _, n in reports.STAGES]
    fmt = _fmt(request)
    if fmt == "json":
        return _json({"from": first, "to": last, "channel": channel, "source": source, "scene": scene, "stages": names,
                      "days": [{"day": r.day, "members": list(r.counts), "rates": [_pct(x) for x in r.rates],
                                "paid_fen": r.paid_fen} for r in f.rows],
                      "total": {"members": list(f.total.counts), "rates": [_pct(x) for x in f.total.rates],
                                "paid_fen": f.total.paid_fen}})
    if fmt == "csv":
        return _csv("funnel.csv", ["日期", *names, "浏览/访问", "加购/浏览", "下单/加购", "支付/下单", "支付/访问", "支付金额(分)"],
                    [[r.day, *r.counts, *[reports.percent(x) for x in r.rates[1:]], r.paid_fen] for r in f.rows])
    chart = charts_funnel(names, f.total.counts)
    return render(request, "console/insights/funnel.html", f=f, names=names, days=days, channel=channel,
                  source=source, scene=scene, scenes=scenes, all_channels=dims.channels, all_sources=dims.sources,
                  chart=chart, pct=reports.percent, yuan=reports.yuan, channels=CHANNEL_ZH,
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
        a = await reports.attribution(uow, tenant_of(request), now=svc.clock())
    groups = {"kinds": a.kinds, "scenes": a.scenes, "distributors": a.distributors, "groupbuy": a.campaigns, "coupons": a.coupons}
    fmt = _fmt(request)
    views = [{"key": v.key, "label": v.label, "views": v.views, "members": v.members, "buyers": v.buyers,
              "orders": v.orders, "revenue_fen": v.revenue_fen, "shown": v.shown, "ctr": _pct(v.ctr)} for v in a.views]
    if fmt == "json":
        return _json({**{k: [{"key": x.key, "label": x.label, "members": x.members, "buyers": x.buyers,
                              "revenue_fen": x.revenue_fen} for x in v] for k, v in groups.items()}, "views": views})
    if fmt == "csv":
        return _csv("attribution.csv", ["类别", "来源", "名称", "会员", "购买会员", "净收入(分)"],
                    [[k, x.key, x.label, x.members, x.buyers, x.revenue_fen] for k, v in groups.items() for x in v]
                    + [["views", v["key"], v["label"], v["members"], v["buyers"], v["revenue_fen"]] for v in views])
    return render(request, "console/insights/attribution.html", a=a, yuan=reports.yuan, pct=reports.percent,
                  tab="attribution")


def today(svc: Any) -> date:
    return shanghai_day(svc.clock())


# -- segments ----------------------------------------------------------------------------------

def _rules(form: Any) -> tuple[str, Any]:
    from social_mall_insights import forms as F
    from social_mall_insights import segments as S
    from social_mall_insights.rules import ACQ_ZH as ACQ

    name = F.text(form, "name", "名称", 40)
    rules = S.Rules(
        rfm=tuple(F.many(form, "rfm", S.RFM_NAMES)), level=F.text(form, "level", "会员等级", 20),
        last_after=F.day(form, "last_after", "最近购买不早于"), last_before=F.day(form, "last_before", "最近购买早于"),
        spent_over_fen=F.money(form, "spent_over", "累计消费超过"), city=F.text(form, "city", "城市", 20),
        acq=tuple(F.many(form, "acq", list(ACQ))), channel=F.text(form, "channel", "首次渠道", 16),
        category=F.integer(form, "category", "分类编号", 0, 2**31), product=F.integer(form, "product", "商品编号", 0, 2**31),
        tag=F.integer(form, "tag", "标签", 0, 2**62), group=F.text(form, "group", "所属", 60))
    if rules.group and rules.group_ref() is None:
        raise F.FormProblem("所属", "请从列表中选择")
    return name, rules


@routes.get("/console/insights/segments")
@console_view(VIEW)
async def segments_page(request: web.Request) -> web.Response:
    return await _segments(request, {}, None, "")


async def _segments(request: web.Request, form: Any, count: int | None, problem: str,
                    status: int = 200) -> web.Response:
    import secrets

    from social_mall.loyalty import service as loyalty
    from social_mall_insights import segments as S

    from social_mall.members import tags as T

    svc = services(request)
    groups = svc.registry.member_groups
    async with svc.uows() as uow:
        rows = await S.listed(uow, tenant_of(request))
        broken, counts = await S.page_counts(uow, tenant_of(request), rows, svc.clock(), groups)
        names = await S.names(uow, tenant_of(request), groups)
        all_tags = await T.list_tags(uow, tenant_of(request))
        templates = await loyalty.issuable(uow, tenant_of(request), svc.clock())
    group_options = [(k, v) for k, v in names.items() if not k.startswith("tag:")]
    return render(request, "console/insights/segments.html", status=status, rows=rows, counts=counts,
                  describe=lambda r: S.Rules.of(r).describe(names), form=form, count=count, problem=problem,
                  rfm_names=S.RFM_NAMES, acq=ACQ_ZH, tab="segments", tags=all_tags, group_options=group_options,
                  names=names, templates=templates, key=secrets.token_hex(12), broken=broken)


@routes.post("/console/insights/segments")
@console_view(PUSH)
async def segments_post(request: web.Request) -> web.Response:
    from handlers.console.core import form_of, redirect

    from social_mall_insights import segments as S
    from social_mall_insights.forms import FormProblem

    from social_mall.members import tags as T
    from social_mall_insights import forms as F

    form = form_of(request)
    svc = services(request)
    groups = svc.registry.member_groups
    try:
        name, rules = _rules(form)
        if form.get("action") == "save" and not name:
            raise FormProblem("名称", "必填")
        auto_tag = F.text(form, "auto_tag", "自动打标签", 30)
        if auto_tag and T.clean_name(auto_tag) is None:
            raise FormProblem("自动打标签", "1–30 个字")
    except FormProblem as exc:
        return await _segments(request, form, None, str(exc), status=400)
    async with svc.uows() as uow:
        gone = await S.problems(uow, tenant_of(request), rules, groups)
    if gone:   # a tag deleted meanwhile, another tenant's id, a group no module offers
        return await _segments(request, form, None, "；".join(gone) + "：请从列表中重新选择", status=400)
    if form.get("action") != "save":
        async with svc.uows() as uow:
            n = len(await S.members(uow, tenant_of(request), rules, svc.clock(), groups))
        return await _segments(request, form, n, "")
    async with svc.uows() as uow:
        actor = f"admin:{admin_of(request).username}"
        tag_id = await T.create_tag(uow, tenant_of(request), auto_tag, actor=actor, now=svc.clock()) if auto_tag else None
        sid = await S.save(uow, tenant_of(request), name, rules, svc.clock(), tag_id=tag_id)
        uow.audit(tenant_of(request), actor, "segment.create", f"segment:{sid}",
                  after={**rules.to_json(), "auto_tag": tag_id})
        if auto_tag:  # tag the members now; the hourly job keeps it in line
            await S.sync_tags(uow, svc.clock(), groups, tenant=tenant_of(request))
        await uow.commit()
    raise redirect("/console/insights/segments", ok="saved")


GIVE_KEY_TTL = 86_400.0   # s: a give form's one-time key is remembered a day (a resubmit gives nothing)


@routes.post(r"/console/insights/segments/{id}/coupons")
@console_view(PUSH)
async def segment_coupons(request: web.Request) -> web.Response:
    """Give every member of a segment one coupon of a template (the core's `issue_coupon`:
    outside the per-member limit, within the total, each audited `coupon.issue`, the member
    told), in one transaction: the total running out gives nobody anything. The form's
    one-time key makes a double click or a resubmit give nothing more; one audit entry
    `segment.coupons` says who gave what to how many."""
    from handlers.console.core import error_page, form_of, int_id, redirect
    from handlers.console.pages_loyalty import coupon_form
    from social_mall.errors import NotFoundError
    from social_mall.loyalty import service as loyalty
    from social_mall.loyalty.errors import CouponSoldOutError
    from social_mall_insights import segments as S

    svc = services(request)
    tenant, sid = tenant_of(request), int_id(request)
    template, key = coupon_form(form_of(request))
    async with svc.uows() as uow:
        seg = await S.get(uow, tenant, sid)
        if seg is None:
            raise NotFoundError("segment", sid)
        gone = await S.problems(uow, tenant, S.Rules.of(seg.rules), svc.registry.member_groups)
        people = [m for m, _ in await S.members(uow, tenant, S.Rules.of(seg.rules), svc.clock(),
                                                svc.registry.member_groups)]
    if gone:
        return error_page(request, 409, "人群规则已失效", f"人群「{seg.name}」的规则中{'；'.join(gone)}，"
                                                       "一张券也没有发出；请按现在的标签新建人群后再发。")
    lock = f"console:segment_coupons:{tenant}:{key}"
    if not await svc.kv.set_nx(lock, str(sid), GIVE_KEY_TTL):
        raise redirect("/console/insights/segments", ok="saved")       # this form gave already
    actor = admin_of(request).actor
    try:
        async with svc.uows() as uow:
            for member in people:
                await loyalty.issue_coupon(uow, tenant, member, template, actor=actor, now=svc.clock())
            uow.audit(tenant, actor, "segment.coupons", f"segment:{sid}",
                      after={"template_id": template, "members": len(people)})
            await uow.commit()
    except CouponSoldOutError as exc:
        await svc.kv.delete(lock)
        return error_page(request, 409, "券不够发", f"「{exc.name}」剩余的数量不够发给这个人群的 {len(people)} 人，"
                                                 "一张也没有发出；请换一种券或在券模板里加量。")
    except BaseException:
        await svc.kv.delete(lock)   # nothing was given: the form may be sent again
        raise
    svc.outbox.kick()
    raise redirect("/console/insights/segments", ok="saved")


# -- campaigns -------------------------------------------------------------------------------

@routes.get("/console/insights/campaigns")
@console_view(VIEW)
async def campaigns_page(request: web.Request) -> web.Response:
    return await _campaigns(request, {}, None, "")


async def _campaigns(request: web.Request, form: Any, preview: Mapping[str, Any] | None, problem: str,
                     status: int = 200) -> web.Response:
    import uuid

    from social_mall_insights import campaigns as K
    from social_mall_insights import segments as S

    svc = services(request)
    async with svc.uows() as uow:
        segs = await S.listed(uow, tenant_of(request))
        rows = await K.listed(uow, tenant_of(request))
        reps = {c.id: await K.report(uow, tenant_of(request), c.id) for c in rows[:20]}
        p = await K.prefs(uow, tenant_of(request))
    return render(request, "console/insights/campaigns.html", status=status, segs=segs, rows=rows, reps=reps,
                  form=form, preview=preview, problem=problem, key=form.get("form_key") or uuid.uuid4().hex,
                  prefs=p, when=lambda at: at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"), yuan=reports.yuan,
                  tab="campaigns")


@routes.post("/console/insights/campaigns")
@console_view(PUSH)
async def campaigns_post(request: web.Request) -> web.Response:
    from handlers.console.core import form_of, redirect

    from social_mall_insights import campaigns as K
    from social_mall_insights import forms as F
    from social_mall_insights import segments as S
    from social_mall_insights.forms import FormProblem

    form = form_of(request)
    svc = services(request)
    now = svc.clock()
    try:
        name = F.text(form, "name", "名称", 40, required=True)
        text = F.text(form, "text", "内容", 600, required=True, multiline=True)
        url = F.url(form, "url", "链接")
        send_at = F.when(form, "send_at", "发送时间", now)
        sid = F.integer(form, "segment", "人群", 1, 2**62)
        key = F.text(form, "form_key", "表单", 40, required=True)
        if not key.isascii():
            raise FormProblem("表单", "无效")
    except FormProblem as exc:
        return await _campaigns(request, form, None, str(exc), status=400)
    async with svc.uows() as uow:
        seg = await S.get(uow, tenant_of(request), sid)
        people = (await S.members(uow, tenant_of(request), S.Rules.of(seg.rules), now, svc.registry.member_groups)
                  if seg is not None else [])
        gone = (await S.problems(uow, tenant_of(request), S.Rules.of(seg.rules), svc.registry.member_groups)
                if seg is not None else [])
        p = await K.prefs(uow, tenant_of(request))
    if seg is None:
        return await _campaigns(request, form, None, "人群：不存在", status=400)
    if gone:
        return await _campaigns(request, form, None, f"人群「{seg.name}」的规则已失效（{'；'.join(gone)}），"
                                                     "不能推送：请在「人群」里新建后再选", status=400)
    if form.get("action") != "create":
        preview = {"count": len(people), "kf": f"{text}\n（跟踪链接）\n回复「退订」不再接收",
                   "template": p.template_id, "first": text[:200], "send_at": send_at}
        return await _campaigns(request, form, preview, "")
    async with svc.uows() as uow:
        actor = f"admin:{admin_of(request).username}"
        cid, made = await K.create(uow, tenant_of(request), actor, segment_id=sid, name=name, text=text, url=url,
                                   send_at=send_at, form_key=key, now=now)
        await uow.commit()
    raise redirect(f"/console/insights/campaigns/{cid}", ok="saved" if made else "saved")


@routes.get(r"/console/insights/campaigns/{id}")
@console_view(VIEW)
async def campaign_page(request: web.Request) -> web.Response:
    from handlers.console.core import int_id

    from social_mall.errors import NotFoundError
    from social_mall_insights import campaigns as K

    svc = services(request)
    cid = int_id(request)
    async with svc.uows() as uow:
        c = await K.get(uow, tenant_of(request), cid)
        if c is None:
            raise NotFoundError("campaign", str(cid))
        rep = await K.report(uow, tenant_of(request), cid)
    if _fmt(request) == "json":
        return _json({"id": c.id, "name": c.name, "status": c.status, "targeted": rep.targeted, "sent": rep.sent,
                      "via_kf": rep.via_kf, "via_template": rep.via_template, "via_subscribe": rep.via_subscribe, "skipped": dict(rep.skipped),
                      "failed": rep.failed, "delivered": rep.delivered, "opened": rep.opened, "buyers": rep.buyers,
                      "orders": rep.orders, "revenue_fen": rep.revenue_fen})
    return render(request, "console/insights/campaign.html", c=c, rep=rep, yuan=reports.yuan,
                  when=lambda at: at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"), tab="campaigns")


# -- settings -----------------------------------------------------------------------------------

@routes.get("/console/insights/settings")
@console_view(VIEW)
async def settings_page(request: web.Request) -> web.Response:
    from social_mall_insights import campaigns as K

    async with services(request).uows() as uow:
        p = await K.prefs(uow, tenant_of(request))
    return render(request, "console/insights/settings.html", p=p, problem="", tab="settings")


@routes.post("/console/insights/settings")
@console_view(PUSH)
async def settings_post(request: web.Request) -> web.Response:
    from handlers.console.core import form_of, redirect

    from social_mall_insights import campaigns as K
    from social_mall_insights import forms as F
    from social_mall_insights.forms import FormProblem

    form = form_of(request)
    try:
        p = K.Prefs(retention_days=F.integer(form, "retention_days", "原始事件保留天数", 30, 3650, default=730),
                    template_id=F.text(form, "template_id", "模板消息 ID", 64),
                    quiet_start=F.clock(form, "quiet_start", "免打扰开始", 22 * 60),
                    quiet_end=F.clock(form, "quiet_end", "免打扰结束", 8 * 60),
                    weekly_cap=F.integer(form, "weekly_cap", "每人每周最多", 0, 50, default=2),
                    sub_template_id=F.text(form, "sub_template_id", "订阅通知模板 ID", 64),
                    sub_text_key=F.text(form, "sub_text_key", "订阅通知内容字段", 32) or "thing1")
        for label, value in (("模板消息 ID", p.template_id), ("订阅通知模板 ID", p.sub_template_id)):
            if value and not value.replace("-", "").replace("_", "").isalnum():
                raise FormProblem(label, "只能包含字母、数字、- 和 _")
        if not (p.sub_text_key.isascii() and p.sub_text_key.isalnum()):
            raise FormProblem("订阅通知内容字段", "形如 thing1（模板详情里的关键词）")
    except FormProblem as exc:
        async with services(request).uows() as uow:
            cur = await K.prefs(uow, tenant_of(request))
        return render(request, "console/insights/settings.html", status=400, p=cur, problem=str(exc), tab="settings")
    async with services(request).uows() as uow:
        before = await K.prefs(uow, tenant_of(request))
        await K.save_prefs(uow, tenant_of(request), p)
        uow.audit(tenant_of(request), f"admin:{admin_of(request).username}",
                  "insights.settings", f"tenant:{tenant_of(request)}", before=vars_of(before), after=vars_of(p))
        await uow.commit()
    raise redirect("/console/insights/settings", ok="saved")


def vars_of(p: Any) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(p)
