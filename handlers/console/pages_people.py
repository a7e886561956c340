"""Members (and their birthday and tags), the tenant's member tags, the audit log, admin
users and roles, API tokens."""

from __future__ import annotations

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, form_of, int_id, page_number, redirect, render, services, tenant_of,
)
from handlers.console.channel_checks import WECHAT_ERRORS_ZH, Verdict
from handlers.console.registry import member_panels
from handlers import wechat_tags
from social_mall.console import auth
from social_mall.console.audit import audit_filter, list_audit
from social_mall.console.members import member_detail, search_members, set_member_birthday
from social_mall.members import tags
from social_mall.console.rules import shanghai_date
from social_mall.console.permissions import ROLE_ZH, TENANT_ROLES, Perm
from social_mall.parsing import parse_id

routes = web.RouteTableDef()


TAG_FILTER_MAX = 10


@routes.get("/console/members")
@console_view(Perm.MEMBERS_VIEW)
async def members(request: web.Request) -> web.Response:
    """Search members; `tag` (repeatable) keeps those holding every tag chosen."""
    q = request.query.get("q", "")[:64]
    chosen = sorted({n for n in map(parse_id, request.query.getall("tag", [])[:TAG_FILTER_MAX]) if n is not None})
    async with services(request).uows() as uow:
        page = await search_members(uow, tenant_of(request), q, page=page_number(request), per_page=20,
                                    tag_ids=chosen)
        all_tags = await tags.list_tags(uow, tenant_of(request))
    query = [("q", q)] + [("tag", str(t)) for t in chosen]
    return render(request, "console/members.html", page=page, q=q, all_tags=all_tags, chosen=set(chosen),
                  query=query)


@routes.get("/console/tags")
@console_view(Perm.MEMBERS_VIEW)
async def tag_list(request: web.Request) -> web.Response:
    return await _tags_page(request)


async def _tags_page(request: web.Request, *, verdicts: list[Verdict] | None = None,
                     status: int = 200) -> web.Response:
    async with services(request).uows() as uow:
        rows = await tags.list_tags(uow, tenant_of(request), services(request).registry.tag_rules)
    return render(request, "console/tags.html", status=status, tags=rows, verdicts=verdicts or [])


TAG_SYNC_ERRORS_ZH = {
    **WECHAT_ERRORS_ZH,
    45056: "该公众号的标签已满（最多 100 个）：请先在公众号后台删掉不用的标签，再同步",
    45157: "微信不接受这个标签名",
    45158: "标签名超过微信的上限（30 字节，约 10 个汉字）：请改短后再同步",
}


def _sync_verdict(o: wechat_tags.Outcome) -> Verdict:
    if o.ok:
        more = f"，{o.skipped} 个粉丝不是该公众号的（未打上）" if o.skipped else ""
        return Verdict(True, f"{o.account}：已同步（微信标签 {o.wechat_tag_id}）{more}")
    zh = TAG_SYNC_ERRORS_ZH.get(o.errcode, "未知错误")
    return Verdict(False, f"{o.account}：未同步，{zh}（errcode {o.errcode}：{o.errmsg[:120]}）")


@routes.post(r"/console/tags/{id}/wechat")
@console_view(Perm.MEMBERS_EDIT)
async def tag_wechat_sync(request: web.Request) -> web.Response:
    """「同步到微信」: the tag and its members onto each official account's user tags (audited)."""
    outcomes = await wechat_tags.sync_tag(services(request), tenant_of(request), int_id(request),
                                          actor=admin_of(request).actor)
    if not outcomes:
        return await _tags_page(request, status=400,
                                verdicts=[Verdict(False, "还没有启用的公众号：请先在「渠道账号」里添加")])
    verdicts = [_sync_verdict(o) for o in outcomes]
    return await _tags_page(request, verdicts=verdicts, status=200 if all(v.ok for v in verdicts) else 502)


@routes.post(r"/console/tags/{id}/rename")
@console_view(Perm.MEMBERS_EDIT)
async def tag_rename(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        await tags.rename_tag(uow, tenant_of(request), int_id(request), str(form_of(request).get("name", "")),
                              actor=admin_of(request).actor)
        await uow.commit()
    raise redirect("/console/tags", ok="saved")


@routes.get(r"/console/tags/{id}/delete")
@console_view(Perm.MEMBERS_EDIT)
async def tag_delete_confirm(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        t = await tags.get_tag(uow, tenant_of(request), int_id(request), services(request).registry.tag_rules)
    return render(request, "console/tag_delete_confirm.html", t=t)


@routes.post(r"/console/tags/{id}/delete")
@console_view(Perm.MEMBERS_EDIT)
async def tag_delete(request: web.Request) -> web.Response:
    tag_id = int_id(request)
    if form_of(request).get("confirm") != "1":
        raise redirect(f"/console/tags/{tag_id}/delete")
    async with services(request).uows() as uow:
        await tags.delete_tag(uow, tenant_of(request), tag_id, actor=admin_of(request).actor)
        await uow.commit()
    raise redirect("/console/tags", ok="deleted")


@routes.get(r"/console/members/{id}")
@console_view(Perm.MEMBERS_VIEW)
async def member_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        d = await member_detail(uow, tenant_of(request), int_id(request), page=page_number(request))
        held = await tags.member_tags(uow, tenant_of(request), d.member.id)
        all_tags = await tags.list_tags(uow, tenant_of(request))
    panels = [p for p in [await panel(request, tenant_of(request), d.member.id)
                          for panel in member_panels(services(request).registry)] if p is not None]
    return render(request, "console/member.html", d=d, m=d.member, panels=panels, tags=held, all_tags=all_tags)


@routes.post(r"/console/members/{id}/tags")
@console_view(Perm.MEMBERS_EDIT)
async def member_tag(request: web.Request) -> web.Response:
    svc = services(request)
    mid = int_id(request)
    async with svc.uows() as uow:
        await tags.tag_member(uow, tenant_of(request), mid, str(form_of(request).get("tag", "")),
                              actor=admin_of(request).actor, now=svc.clock())
        await uow.commit()
    raise redirect(f"/console/members/{mid}", ok="saved")


@routes.post(r"/console/members/{id}/tags/{tag_id}/remove")
@console_view(Perm.MEMBERS_EDIT)
async def member_untag(request: web.Request) -> web.Response:
    svc = services(request)
    mid = int_id(request)
    async with svc.uows() as uow:
        await tags.untag_member(uow, tenant_of(request), mid, int_id(request, "tag_id"), actor=admin_of(request).actor)
        await uow.commit()
    raise redirect(f"/console/members/{mid}", ok="saved")


@routes.post(r"/console/members/{id}/birthday")
@console_view(Perm.MEMBERS_EDIT)
async def member_birthday(request: web.Request) -> web.Response:
    svc = services(request)
    mid = int_id(request)
    async with svc.uows() as uow:
        await set_member_birthday(uow, tenant_of(request), admin_of(request), mid,
                                  str(form_of(request).get("birthday", "")), today=shanghai_date(svc.clock()))
        await uow.commit()
    raise redirect(f"/console/members/{mid}", ok="saved")


@routes.get("/console/audit")
@console_view(Perm.AUDIT_VIEW)
async def audit(request: web.Request) -> web.Response:
    f = audit_filter(request.query)
    async with services(request).uows() as uow:
        page = await list_audit(uow, tenant_of(request), f, page=page_number(request), per_page=50)
    query = {k: v for k, v in request.query.items() if k != "page"}
    return render(request, "console/audit.html", page=page, f=f, query=query)


@routes.get("/console/admins")
@console_view(Perm.ADMINS)
async def admins(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        rows = await auth.list_admins(uow, tenant_of(request))
    return render(request, "console/admins.html", admins=rows, roles=[(r.value, ROLE_ZH[r]) for r in TENANT_ROLES],
                  role_names={r.value: ROLE_ZH[r] for r in ROLE_ZH}, now=services(request).clock())


@routes.post("/console/admins")
@console_view(Perm.ADMINS)
async def add_admin(request: web.Request) -> web.Response:
    form = form_of(request)
    async with services(request).uows() as uow:
        await auth.add_admin(uow, tenant_of(request), admin_of(request), username=str(form.get("username", "")),
                             password=str(form.get("password", "")), role=str(form.get("role", "")))
        await uow.commit()
    raise redirect("/console/admins", ok="created")


@routes.post(r"/console/admins/{id}/role")
@console_view(Perm.ADMINS)
async def change_role(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        await auth.change_role(uow, tenant_of(request), admin_of(request), int_id(request),
                               str(form_of(request).get("role", "")), now=svc.clock())
        await uow.commit()
    raise redirect("/console/admins", ok="saved")


@routes.post(r"/console/admins/{id}/password")
@console_view(Perm.ADMINS)
async def reset_password(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        await auth.reset_password(uow, tenant_of(request), admin_of(request), int_id(request),
                                  str(form_of(request).get("password", "")), now=svc.clock())
        await uow.commit()
    raise redirect("/console/admins", ok="saved")


@routes.post(r"/console/admins/{id}/{action:disable|enable}")
@console_view(Perm.ADMINS)
async def disable_admin(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        await auth.set_disabled(uow, tenant_of(request), admin_of(request), int_id(request),
                                request.match_info["action"] == "disable", now=svc.clock())
        await uow.commit()
    raise redirect("/console/admins", ok="saved")


@routes.get("/console/tokens")
@console_view(Perm.TOKENS, tenant=False)
async def tokens(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        rows = await auth.list_tokens(uow, admin_of(request))
    return render(request, "console/tokens.html", tokens=rows, new_token="")


@routes.post("/console/tokens")
@console_view(Perm.TOKENS, tenant=False)
async def issue_token(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        plain, _ = await auth.issue_token(uow, admin_of(request), str(form_of(request).get("name", "")), svc.clock())
        await uow.commit()
        rows = await auth.list_tokens(uow, admin_of(request))
    return render(request, "console/tokens.html", tokens=rows, new_token=plain)


@routes.post(r"/console/tokens/{id}/revoke")
@console_view(Perm.TOKENS, tenant=False)
async def revoke_token(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        await auth.revoke_token(uow, admin_of(request), int_id(request), svc.clock())
        await uow.commit()
    raise redirect("/console/tokens", ok="token_revoked")
