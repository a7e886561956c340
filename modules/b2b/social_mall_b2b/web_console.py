"""The module's console pages (/console/b2b/…), through the console's extension point:
every handler is guarded by `console_view` (session, CSRF on every POST, the permission,
the admin's tenant). 企业账户: applications to approve or reject (with a reason; audited
and pushed to the applicant), each company's customer group. 价格表: customer groups,
price lists (sale / override, for a group or one company, % off retail and per-SKU tiers,
validity dates), SKU order terms (minimum order quantity, case pack) and the products sold to
business accounts only (企业专供: exclusive.py). A bad form
answers with the page again and a Chinese problem text (400), never a 500."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, form_of, int_id, page_number, redirect, render, services, tenant_of,
)
from handlers.console.registry import add_console_page, add_console_permission
from social_mall.parsing import parse_id
from social_mall.plugins import Registry
from social_mall.errors import NotFoundError
from social_mall_b2b import accounts, budgets, exclusive, prices, quick, quotes
from social_mall_b2b.repos import B2bRepo
from social_mall_b2b.errors import B2bError, InvalidApplicationError
from social_mall_b2b.rules import BP, ListKind, parse_tier_lines

routes = web.RouteTableDef()

VIEW, EDIT, REVIEW = "b2b.view", "b2b.edit", "b2b.review"
SHANGHAI = timezone(timedelta(hours=8))
STATUS_ZH = {"pending": "待审核", "approved": "已通过", "rejected": "已驳回"}


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="b2b", title="企业采购", path="/console/b2b/companies", perm=VIEW, order=47,
                     module="b2b")
    add_console_permission(reg, VIEW, ("admin", "operator", "service", "finance"))
    add_console_permission(reg, EDIT, ("admin", "operator"))
    add_console_permission(reg, REVIEW, ("admin", "operator"))


def actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


def _text(form: Mapping[str, object], name: str, max_len: int) -> str:
    value = " ".join(unicodedata.normalize("NFKC", str(form.get(name, "") or "")).split())
    if len(value) > max_len or not value.isprintable():
        raise InvalidApplicationError(name)
    return value


def _opt_id(form: Mapping[str, object], name: str) -> int | None:
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return None
    n = parse_id(raw)
    if n is None:
        raise InvalidApplicationError(name)
    return n


def _int(form: Mapping[str, object], name: str, lo: int, hi: int, default: int) -> int:
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not lo <= int(raw) <= hi:
        raise InvalidApplicationError(name)
    return int(raw)


def _day(form: Mapping[str, object], name: str, end: bool) -> datetime | None:
    """A date (Shanghai) → UTC: a start at 00:00 of that day, an end at 00:00 of the next."""
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return None
    try:
        d = date.fromisoformat(raw) if raw.isascii() and len(raw) == 10 else None
    except ValueError:
        d = None
    if d is None:
        raise InvalidApplicationError(name)
    at = datetime.combine(d + timedelta(days=1) if end else d, time(0), SHANGHAI)
    return at.astimezone(timezone.utc)


PROBLEM_ZH = {"reason": "驳回需要填写原因", "name": "名称不能为空（最多 40 字）", "group_name": "分组名称为空或已存在",
              "target": "请选择分组或企业（二选一）", "percent": "折扣须在 0–99.99% 之间", "tiers": "阶梯价格式不对",
              "starts_at": "开始日期格式应为 2030-01-31", "ends_at": "结束日期格式应为 2030-01-31",
              "terms": "起订量和整箱数须为 1–999999", "group_id": "分组不对", "company_id": "企业不对",
              "kind": "类型不对", "sku_id": "SKU 编号不对", "moq": "起订量须为 1–999999",
              "case_pack": "整箱数须为 1–999999",
              "quote_prices": "每一行都要填大于 0 的单价", "limit": "限额格式不对（元，如 5000）", "expires_on": "有效期须为今天或以后的日期（2030-01-31）",
              "code": "商品编码只能用字母、数字、- 和 _（最多 32 位）", "code_taken": "这个商品编码已被其他 SKU 使用",
              "repayment": "还款金额须大于 0、不超过未还金额，并填写银行流水号", "ref": "银行流水号最多 60 字",
              "receipt": "收款金额须大于 0、不超过待收金额，并填写银行流水号", "serial": "银行流水号最多 60 字",
              "transfer_closed": "该订单已不在待支付状态（已关闭或已支付），请线下处理这笔款项",
              "bank_name": "开户行最多 60 字", "account_name": "户名最多 60 字", "account_no": "账号最多 40 位",
              "transfer_hours": "转账期限须为 1–1440 小时", "vat": "增值税率须为 0–30 的整数（%）",
              "refund_ref": "请填写退款的银行流水号（最多 60 字）", "product_id": "商品编号不对",
              "quote_from": "询价门槛须为 0–999999 件（0：不提示）"}


def problem(exc: B2bError) -> str:
    field = getattr(exc, "field", "")
    return PROBLEM_ZH.get(field, field or exc.code)


# -- companies -----------------------------------------------------------------------------------

async def _companies_page(request: web.Request, status: int = 200, error: str = "") -> web.Response:
    wanted = request.query.get("status", "")
    wanted = wanted if wanted in STATUS_ZH else ""
    async with services(request).uows() as uow:
        page = await accounts.list_companies(uow, tenant_of(request), wanted or None, page_number(request))
        groups = dict(await prices.groups(uow, tenant_of(request)))
        in_groups = await prices.company_groups(uow, tenant_of(request), [c.id for c in page.items])
        buyers = await accounts.buyers_of(uow, tenant_of(request), [c.id for c in page.items])
        limits = await budgets.budgets(uow, tenant_of(request), services(request).clock())
    return render(request, "console/b2b/companies.html", status=status, page=page, status_zh=STATUS_ZH,
                  wanted=wanted, groups=groups, in_groups=in_groups, buyers=buyers, limits=limits, error=error)


@routes.get("/console/b2b/companies")
@console_view(VIEW)
async def company_list(request: web.Request) -> web.Response:
    return await _companies_page(request)


@routes.post(r"/console/b2b/companies/{id}/decide")
@console_view(REVIEW)
async def company_decide(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    verdict = str(form.get("verdict", ""))
    try:
        if verdict not in ("approve", "reject"):
            raise InvalidApplicationError("verdict")
        reason = _text(form, "reason", 200)
        async with svc.uows() as uow:
            await accounts.decide(uow, tenant_of(request), int_id(request), approve=verdict == "approve",
                                  reason=reason, actor=actor(request), now=svc.clock())
            await uow.commit()
    except B2bError as exc:
        msg = "这份申请已经处理过了" if exc.code == "b2b_not_pending" else problem(exc)
        return await _companies_page(request, 409 if exc.code == "b2b_not_pending" else 400, msg)
    raise redirect("/console/b2b/companies", ok="saved")


@routes.post(r"/console/b2b/companies/{id}/group")
@console_view(EDIT)
async def company_group(request: web.Request) -> web.Response:
    """A company's customer groups: every `group_id` selected (several; none clears them)."""
    form = form_of(request)
    raw = [str(v).strip() for v in (form.getall("group_id", []) if hasattr(form, "getall") else [])]
    ids = [parse_id(v) for v in raw if v]
    if any(i is None for i in ids) or len(ids) > 50:
        return await _companies_page(request, 400, problem(InvalidApplicationError("group_id")))
    async with services(request).uows() as uow:
        await prices.set_company_groups(uow, tenant_of(request), int_id(request), [i for i in ids if i is not None],
                                        actor(request))
        await uow.commit()
    raise redirect("/console/b2b/companies", ok="saved")


# -- price lists, groups, terms ---------------------------------------------------------------------

async def _prices_page(request: web.Request, status: int = 200, error: str = "",
                       values: Mapping[str, Any] | None = None) -> web.Response:
    tenant = tenant_of(request)
    async with services(request).uows() as uow:
        lists = await prices.list_views(uow, tenant)
        groups = await prices.groups(uow, tenant)
        companies = await accounts.list_companies(uow, tenant, "approved", 1, 200)
        terms = await prices.all_terms(uow, tenant)
        codes = await B2bRepo(uow.session).codes(tenant)
        only = await exclusive.listed(uow, tenant)
    return render(request, "console/b2b/prices.html", status=status, lists=lists, groups=groups, exclusive=only,
                  group_names=dict(groups), companies=companies.items,
                  company_names={c.id: c.name for c in companies.items}, terms=terms, codes=codes, error=error,
                  v=values or {}, shanghai_day=lambda d: d.astimezone(SHANGHAI).date().isoformat() if d else "")


@routes.get("/console/b2b/prices")
@console_view(VIEW)
async def price_page(request: web.Request) -> web.Response:
    return await _prices_page(request)


@routes.post("/console/b2b/groups")
@console_view(EDIT)
async def group_add(request: web.Request) -> web.Response:
    try:
        name = _text(form_of(request), "name", 40)
        async with services(request).uows() as uow:
            await prices.add_group(uow, tenant_of(request), name, actor(request))
            await uow.commit()
    except B2bError as exc:
        return await _prices_page(request, 400, problem(exc))
    raise redirect("/console/b2b/prices", ok="saved")


def parse_list(form: Mapping[str, object]) -> prices.ListInput:
    name = _text(form, "name", 40)
    if not name:
        raise InvalidApplicationError("name")
    kind = str(form.get("kind", ""))
    if kind not in (ListKind.SALE, ListKind.OVERRIDE):
        raise InvalidApplicationError("kind")
    pct = str(form.get("percent_off", "") or "").strip()
    from social_mall_b2b.rules import parse_yuan

    bp = parse_yuan(pct) if pct else 0     # "15" → 1500 bp, "12.5" → 1250 (same digits as yuan→fen)
    if bp is None or not 0 <= bp < BP:
        raise InvalidApplicationError("percent")
    tiers, bad = parse_tier_lines(str(form.get("tiers", "") or ""))
    if bad is not None:
        raise InvalidApplicationError("tiers")
    starts, ends = _day(form, "starts_at", False), _day(form, "ends_at", True)
    return prices.ListInput(name, ListKind(kind), _opt_id(form, "group_id"), _opt_id(form, "company_id"), bp,
                            starts, ends, str(form.get("active", "")) in ("1", "on", "true"), tuple(tiers))


async def _save_list(request: web.Request, list_id: int | None) -> web.Response:
    form = form_of(request)
    try:
        data = parse_list(form)
        async with services(request).uows() as uow:
            await prices.save_list(uow, tenant_of(request), list_id, data, actor(request))
            await uow.commit()
    except B2bError as exc:
        return await _prices_page(request, 400, problem(exc), {k: str(v) for k, v in form.items()})
    raise redirect("/console/b2b/prices", ok="saved")


@routes.post("/console/b2b/lists")
@console_view(EDIT)
async def list_create(request: web.Request) -> web.Response:
    return await _save_list(request, None)


@routes.post(r"/console/b2b/lists/{id}")
@console_view(EDIT)
async def list_update(request: web.Request) -> web.Response:
    return await _save_list(request, int_id(request))


@routes.post("/console/b2b/terms")
@console_view(EDIT)
async def terms_save(request: web.Request) -> web.Response:
    form = form_of(request)
    try:
        sku = _opt_id(form, "sku_id")
        if sku is None:
            raise InvalidApplicationError("sku_id")
        moq, case = _int(form, "moq", 1, 999_999, 1), _int(form, "case_pack", 1, 999_999, 1)
        code = _text(form, "code", 32)
        vat = _int(form, "vat", 0, 30, -1)
        async with services(request).uows() as uow:
            await prices.set_terms(uow, tenant_of(request), sku, moq, case, actor(request))
            if code:
                await quick.set_code(uow, tenant_of(request), sku, code, actor(request))
            if vat >= 0:
                from social_mall_b2b.vat import set_rate

                await set_rate(uow, tenant_of(request), sku, vat * 100, actor(request))
            await uow.commit()
    except B2bError as exc:
        return await _prices_page(request, 400, problem(exc))
    raise redirect("/console/b2b/prices", ok="saved")


@routes.post("/console/b2b/exclusive")
@console_view(EDIT)
async def exclusive_save(request: web.Request) -> web.Response:
    """Mark a product 企业专供 (business accounts only) or sell it to everyone again."""
    form = form_of(request)
    product = _opt_id(form, "product_id")
    if product is None:
        return await _prices_page(request, 400, problem(InvalidApplicationError("product_id")))
    try:
        async with services(request).uows() as uow:
            await exclusive.set_exclusive(uow, tenant_of(request), product, str(form.get("on", "")) == "1",
                                          actor(request))
            await uow.commit()
    except NotFoundError:
        return await _prices_page(request, 404, "没有这个商品")
    raise redirect("/console/b2b/prices", ok="saved")


# -- quotes ----------------------------------------------------------------------------------------

QUOTE_ZH = {"requested": "待报价", "answered": "已报价", "accepted": "已下单"}


async def _quotes_page(request: web.Request, status: int = 200, error: str = "") -> web.Response:
    async with services(request).uows() as uow:
        found = await quotes.list_quotes(uow, tenant_of(request))
        quote_from = await quotes.quote_from(uow, tenant_of(request))
    return render(request, "console/b2b/quotes.html", status=status, quotes=found, quote_zh=QUOTE_ZH,
                  now=services(request).clock(), error=error, quote_from=quote_from)


@routes.get("/console/b2b/quotes")
@console_view(VIEW)
async def quote_list(request: web.Request) -> web.Response:
    return await _quotes_page(request)


@routes.post("/console/b2b/quotes/threshold")
@console_view(EDIT)
async def quote_threshold(request: web.Request) -> web.Response:
    """From how many pieces of one line the buyer is told to ask for a quote (0: never)."""
    try:
        qty = _int(form_of(request), "quote_from", 0, quotes.MAX_THRESHOLD, 0)
        async with services(request).uows() as uow:
            await quotes.set_quote_from(uow, tenant_of(request), qty, actor(request))
            await uow.commit()
    except B2bError as exc:
        return await _quotes_page(request, 400, problem(exc))
    raise redirect("/console/b2b/quotes", ok="saved")


@routes.post(r"/console/b2b/quotes/{id}/answer")
@console_view(REVIEW)
async def quote_answer(request: web.Request) -> web.Response:
    from social_mall_b2b.rules import parse_yuan

    svc = services(request)
    form = form_of(request)
    quote_id = int_id(request)
    try:
        ends = _day(form, "expires_on", True)
        if ends is None:
            raise InvalidApplicationError("expires_on")
        async with svc.uows() as uow:
            view = await quotes.get_quote(uow, tenant_of(request), quote_id)
            fen: dict[int, int] = {}
            for ln in view.lines:
                got = parse_yuan(str(form.get(f"price_{ln.sku_id}", "") or ""))
                if got is None or got <= 0:
                    raise InvalidApplicationError("quote_prices")
                fen[ln.sku_id] = got
            if ends <= svc.clock():
                raise InvalidApplicationError("expires_on")
            await quotes.answer_quote(uow, tenant_of(request), quote_id, fen, ends, actor(request), svc.clock())
            await uow.commit()
    except B2bError as exc:
        if exc.code == "b2b_quote_unavailable":
            return await _quotes_page(request, 409, "这份询价已经报过价了")
        return await _quotes_page(request, 400, problem(exc))
    raise redirect("/console/b2b/quotes", ok="saved")


@routes.post("/console/b2b/limits")
@console_view(EDIT)
async def buyer_limit(request: web.Request) -> web.Response:
    from social_mall_b2b.rules import parse_yuan

    form = form_of(request)
    try:
        member = _opt_id(form, "member_id")
        fen = parse_yuan(str(form.get("limit", "") or ""))
        if member is None or fen is None:
            raise InvalidApplicationError("limit")
        async with services(request).uows() as uow:
            await budgets.set_limit(uow, tenant_of(request), member, fen, actor(request))
            await uow.commit()
    except B2bError as exc:
        return await _companies_page(request, 400, problem(exc))
    raise redirect("/console/b2b/companies", ok="saved")


# -- credit terms, repayments, statements ---------------------------------------------------------

async def _credit_page(request: web.Request, status: int = 200, error: str = "") -> web.Response:
    from social_mall_b2b import credit, statements

    tenant = tenant_of(request)
    async with services(request).uows() as uow:
        companies = (await accounts.list_companies(uow, tenant, "approved", 1, 200)).items
        terms = {c.id: await credit.account(uow, tenant, c.id) for c in companies}
        sts = await statements.statements(uow, tenant)
        mismatches = await credit.reconcile(uow, tenant)
    return render(request, "console/b2b/credit.html", status=status, companies=companies, terms=terms,
                  statements=sts, names={c.id: c.name for c in companies}, mismatches=mismatches,
                  now=services(request).clock(), error=error)


@routes.get("/console/b2b/credit")
@console_view(VIEW)
async def credit_list(request: web.Request) -> web.Response:
    return await _credit_page(request)


@routes.post(r"/console/b2b/credit/{id}/limit")
@console_view(EDIT)
async def credit_limit(request: web.Request) -> web.Response:
    from social_mall_b2b import credit
    from social_mall_b2b.rules import parse_yuan

    fen = parse_yuan(str(form_of(request).get("limit", "") or ""))
    try:
        if fen is None:
            raise InvalidApplicationError("limit")
        async with services(request).uows() as uow:
            await credit.set_limit(uow, tenant_of(request), int_id(request), fen, actor(request))
            await uow.commit()
    except B2bError as exc:
        return await _credit_page(request, 400, problem(exc))
    raise redirect("/console/b2b/credit", ok="saved")


@routes.post(r"/console/b2b/credit/{id}/repay")
@console_view(EDIT)
async def credit_repay(request: web.Request) -> web.Response:
    """A repayment received by bank transfer: the amount and the bank's reference (once)."""
    from social_mall_b2b import credit
    from social_mall_b2b.rules import parse_yuan

    svc = services(request)
    form = form_of(request)
    fen = parse_yuan(str(form.get("amount", "") or ""))
    try:
        ref = _text(form, "ref", 60)
        if fen is None or fen <= 0 or not ref:
            raise InvalidApplicationError("repayment")
        async with svc.uows() as uow:
            done = await credit.record_repayment(uow, tenant_of(request), int_id(request), fen, ref,
                                                 actor(request), svc.clock())
            await uow.commit()
    except B2bError as exc:
        return await _credit_page(request, 400, problem(exc))
    if not done:
        return await _credit_page(request, 409, "这笔还款（同一银行流水号）已经登记过了")
    raise redirect("/console/b2b/credit", ok="saved")


@routes.post("/console/b2b/statements/issue")
@console_view(EDIT)
async def statements_issue(request: web.Request) -> web.Response:
    """Issue last month's statements now (the job does it daily; each once)."""
    from social_mall_b2b import statements

    svc = services(request)
    async with svc.uows() as uow:
        await statements.issue_due(uow, tenant_of(request), svc.clock())
        await uow.commit()
    raise redirect("/console/b2b/credit", ok="saved")


@routes.get(r"/console/b2b/statements/{id}/csv")
@console_view(VIEW)
async def statement_csv(request: web.Request) -> web.StreamResponse:
    from social_mall_b2b import statements

    async with services(request).uows() as uow:
        found = await statements.statement_csv(uow, tenant_of(request), int_id(request))
    if found is None:
        raise web.HTTPNotFound(text="没有这张对账单")
    st, text = found
    return web.Response(body=("\ufeff" + text).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="statement-{st.id}-{st.period}.csv"'})


# -- bank transfers ----------------------------------------------------------------------------------

async def _transfers_page(request: web.Request, status: int = 200, error: str = "") -> web.Response:
    from social_mall_b2b import promos, refunds, transfers

    tenant = tenant_of(request)
    async with services(request).uows() as uow:
        terms = await transfers.shop_terms(uow, tenant)
        rows = await transfers.transfers(uow, tenant)
        offline = await refunds.offline_refunds(uow, tenant)
        orders = {o: await uow.orders.get(tenant, o) for o in {t.order_id for t in rows} | {r.order_id for r in offline}}
        allowed = await promos.allowed(uow, tenant)
    return render(request, "console/b2b/transfers.html", status=status, terms=terms, rows=rows, orders=orders,
                  offline=offline, allowed=allowed, promo_fields=promos.FIELDS, error=error)


@routes.get("/console/b2b/transfers")
@console_view(VIEW)
async def transfer_list(request: web.Request) -> web.Response:
    return await _transfers_page(request)


@routes.post("/console/b2b/transfers/account")
@console_view(EDIT)
async def transfer_account(request: web.Request) -> web.Response:
    from social_mall_b2b import transfers

    form = form_of(request)
    try:
        terms = transfers.BankAccount(_text(form, "bank_name", 60), _text(form, "account_name", 60),
                                      _text(form, "account_no", 40), _int(form, "transfer_hours", 1, 1440, 72))
        async with services(request).uows() as uow:
            await transfers.set_shop_terms(uow, tenant_of(request), terms, actor(request))
            await uow.commit()
    except B2bError as exc:
        return await _transfers_page(request, 400, problem(exc))
    raise redirect("/console/b2b/transfers", ok="saved")


@routes.post(r"/console/b2b/transfers/{id}/receipt")
@console_view(EDIT)
async def transfer_receipt(request: web.Request) -> web.Response:
    """Money received for a transfer order (partial allowed), with the bank's serial number."""
    from social_mall_b2b import transfers
    from social_mall_b2b.rules import parse_yuan

    svc = services(request)
    form = form_of(request)
    fen = parse_yuan(str(form.get("amount", "") or ""))
    try:
        serial = _text(form, "serial", 60)
        if fen is None or fen <= 0 or not serial:
            raise InvalidApplicationError("receipt")
        async with svc.uows() as uow:
            done, _ = await transfers.confirm_receipt(uow, tenant_of(request), int_id(request), fen, serial,
                                                      actor(request), svc.clock())
            await uow.commit()
    except B2bError as exc:
        return await _transfers_page(request, 400, problem(exc))
    if not done:
        return await _transfers_page(request, 409, "这笔收款（同一银行流水号）已经登记过了")
    raise redirect("/console/b2b/transfers", ok="saved")


# -- promotions on 企业价 lines, offline refunds ---------------------------------------------------------

@routes.post("/console/b2b/promos")
@console_view(EDIT)
async def promo_rules(request: web.Request) -> web.Response:
    """Which retail promotions still apply to 企业价 lines (checkboxes; unchecked: not)."""
    from social_mall_b2b import promos

    form = form_of(request)
    rule = promos.Allowed(**{name: str(form.get(name, "") or "") == "1" for name, _, _ in promos.FIELDS})
    async with services(request).uows() as uow:
        await promos.set_allowed(uow, tenant_of(request), rule, actor(request))
        await uow.commit()
    raise redirect("/console/b2b/transfers", ok="saved")


@routes.post(r"/console/b2b/refunds/{id}/confirm")
@console_view(EDIT)
async def offline_refund_confirm(request: web.Request) -> web.Response:
    """The money of an offline refund went back by bank transfer: its bank reference (once)."""
    from social_mall_b2b import refunds

    svc = services(request)
    form = form_of(request)
    try:
        ref = _text(form, "bank_ref", 60)
        async with svc.uows() as uow:
            done = await refunds.confirm_offline(uow, tenant_of(request), int_id(request), ref, actor(request),
                                                 svc.clock())
            await uow.commit()
    except B2bError as exc:
        return await _transfers_page(request, 400, problem(exc))
    if not done:
        return await _transfers_page(request, 409, "这笔退款已确认过，或这个银行流水号已经用过了")
    raise redirect("/console/b2b/transfers", ok="saved")
