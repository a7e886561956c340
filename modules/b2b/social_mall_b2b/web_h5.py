"""The H5 application form (企业账户申请), besides the chat's four steps: 「企业采购」 answers
with a link signed for the member (HMAC of the shop's SECRET_KEY over tenant, member and
day; valid that day and the next), so only the member it was sent to can file with it.
The page asks for every field at once; a wrong 统一社会信用代码 or field is refused with the
same words as in chat and the form kept; filing goes through accounts.apply (audited,
reviewed in the console like a chat application). Never cached, no referrer."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from html import escape

from aiohttp import web

from handlers.context import SERVICES, Services
from handlers.http_utils import read_form
from social_mall.errors import MallError
from social_mall.parsing import same_secret
from social_mall_b2b import accounts
from social_mall_b2b.budgets import SHANGHAI

routes = web.RouteTableDef()
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
           "X-Frame-Options": "DENY"}
FIELDS = (("name", "公司全称（与营业执照一致）"), ("uscc", "统一社会信用代码（18 位）"), ("contact_name", "联系人"),
          ("contact_phone", "联系人手机号"), ("invoice_title", "发票抬头（空：同公司全称）"),
          ("invoice_tax_no", "税号（空：同信用代码）"), ("invoice_bank", "开户行及账号"), ("invoice_address", "地址、电话"))
PROBLEMS = {"name": "公司全称须为 2–60 个字", "contact_name": "请填写联系人", "contact_phone": "手机号应为 11 位数字",
            "invoice_title": "发票抬头最多 60 字", "invoice_tax_no": "税号最多 20 位", "invoice_bank": "开户行及账号最多 100 字",
            "invoice_address": "地址电话最多 200 字"}
USCC_ZH = {"length": "统一社会信用代码应为 18 位，请核对营业执照后重填",
           "chars": "统一社会信用代码含有无效字符（不含字母 I、O、S、V、Z，第 3–8 位为数字），请核对后重填",
           "check": "统一社会信用代码校验位不对，可能有一位输错了，请核对营业执照后重填"}

def _day(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y%m%d")


def token(svc: Services, tenant_code: str, member: int, day: str) -> str:
    key = svc.settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"b2b-apply:{tenant_code}:{member}:{day}".encode(), hashlib.sha256).hexdigest()[:24]


def apply_url(links: object, tenant_code: str, member: int, now: datetime) -> str:
    """The member's signed link to the form (`links`: the flow's ctx.links, the app's
    Services; "" when it is not, e.g. a flow run outside the app)."""
    if not isinstance(links, Services):
        return ""
    svc = links
    day = _day(now)
    return f"{svc.public_base_url}/b2b/apply/{tenant_code}/{member}?d={day}&s={token(svc, tenant_code, member, day)}"


def _valid(svc: Services, tenant_code: str, member: int, day: str, sig: str) -> bool:
    now = svc.clock()
    if day not in (_day(now), _day(now - timedelta(days=1))):
        return False
    return same_secret(sig, token(svc, tenant_code, member, day))  # bytes: a non-ASCII guess is a refusal


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;max-width:32em;margin:1em auto;padding:0 1em">{body}</body></html>')
    return web.Response(text=html, content_type="text/html", status=status, headers=HEADERS)


def _form(values: dict[str, str], error: str) -> str:
    rows = "".join(f'<p><label>{escape(zh)}<br><input name="{k}" value="{escape(values.get(k, ""))}" '
                   f'style="width:100%"></label></p>' for k, zh in FIELDS)
    err = f'<p id="error" style="color:#b00">{escape(error)}</p>' if error else ""
    return f'<h1>申请企业账户</h1>{err}<form method="post">{rows}<button type="submit">提交申请</button></form>'


async def _who(request: web.Request) -> tuple[Services, int, int] | None:
    svc: Services = request.app[SERVICES]
    code = request.match_info["tenant"]
    raw = request.match_info["member"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        return None
    member = int(raw)
    if not _valid(svc, code, member, request.query.get("d", ""), request.query.get("s", "")):
        return None
    try:
        tenant = await svc.tenant(code)
    except MallError:
        return None
    if tenant is None:
        return None
    return svc, tenant.id, member


@routes.get(r"/b2b/apply/{tenant}/{member}")
async def apply_form(request: web.Request) -> web.Response:
    if await _who(request) is None:
        return _page("链接无效", "<p>链接无效或已过期，请在聊天里回复「企业采购」重新获取。</p>", 404)
    return _page("申请企业账户", _form({}, ""))


@routes.post(r"/b2b/apply/{tenant}/{member}")
async def apply_submit(request: web.Request) -> web.Response:
    who = await _who(request)
    if who is None:
        return _page("链接无效", "<p>链接无效或已过期，请在聊天里回复「企业采购」重新获取。</p>", 404)
    svc, tenant, member = who
    form = await read_form(request, HEADERS)  # not UTF-8, NUL: 400, nothing filed
    values = {k: str(form.get(k, ""))[:300] for k, _ in FIELDS}
    a = accounts.Application(values["name"], values["uscc"], values["contact_name"], values["contact_phone"],
                             values["invoice_title"] or values["name"], values["invoice_tax_no"] or values["uscc"],
                             values["invoice_bank"], values["invoice_address"])
    try:
        async with svc.uows() as uow:
            c = await accounts.apply(uow, tenant, member, a, svc.clock())
            await uow.commit()
    except MallError as exc:
        facts = exc.facts()
        if exc.code == "b2b_invalid_uscc":
            msg = USCC_ZH.get(str(facts.get("problem", "")), USCC_ZH["check"])
        elif exc.code == "b2b_already_applied":
            msg = "您已有审核中或已通过的企业账户"
        elif exc.code == "b2b_uscc_taken":
            msg = "这个统一社会信用代码已被本店其他账户使用"
        else:
            msg = PROBLEMS.get(str(facts.get("field", "")), "填写有误，请检查")
        return _page("申请企业账户", _form(values, msg), 400)
    return _page("已提交", f'<h1 id="done">已提交企业账户申请</h1><p>{escape(c.name)}：审核结果会在聊天里通知您。</p>')
