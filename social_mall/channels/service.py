"""Channel accounts of a tenant: official accounts, mini-programs, WeCom apps and group
robots, each with its own credentials and the pay merchant its orders use.

Secrets are write-only: a view says whether one is set, never what it is; saving an empty
secret keeps the stored one. Every save is audited with the names of what changed (never
the values). The primary official account (code "main") mirrors the tenant's own
columns, so code that reads the tenant row sees the same account.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from social_mall.errors import MallError, NotFoundError
from storage.channel_models import ChannelAccount
from storage.channel_repos import ChannelRepo
from storage.uow import UnitOfWork

KINDS = ("mp", "mini", "wecom_app", "wecom_bot")
KIND_LABELS = {"mp": "公众号", "mini": "小程序", "wecom_app": "企业微信应用", "wecom_bot": "企业微信群机器人"}
MP_SUBTYPES = ("service", "subscription")
PRIMARY_CODE = "main"
SECRETS = ("app_secret", "token", "aes_key", "webhook_key")
PLAIN = ("name", "app_id", "agent_id", "subtype")
_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_APP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")
_AES = re.compile(r"[A-Za-z0-9]{43}")
_HOOK_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AGENT = re.compile(r"[0-9]{1,20}")
MENU_MAX_BYTES = 8 * 1024


class ChannelInputError(MallError):
    code = "channel_input"

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(field_name, problem)
        self.field, self.problem = field_name, problem


@dataclass(frozen=True)
class AccountView:
    id: int
    tenant_id: int
    kind: str
    subtype: str
    code: str
    name: str
    app_id: str
    agent_id: str
    pay_account_id: int | None
    menu: str
    menu_published_at: datetime | None
    is_primary: bool
    enabled: bool
    app_secret: str = field(repr=False, default="")
    token: str = field(repr=False, default="")
    aes_key: str = field(repr=False, default="")
    webhook_key: str = field(repr=False, default="")

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def has(self, secret: str) -> bool:
        return bool(getattr(self, secret))


def account_view(r: ChannelAccount) -> AccountView:
    return AccountView(r.id, r.tenant_id, r.kind, r.subtype, r.code, r.name, r.app_id, r.agent_id,
                       r.pay_account_id, r.menu or "", r.menu_published_at, bool(r.is_primary), bool(r.enabled),
                       r.app_secret, r.token, r.aes_key, r.webhook_key)


async def accounts(uow: UnitOfWork, tenant: int) -> tuple[AccountView, ...]:
    return tuple(account_view(r) for r in await ChannelRepo(uow.session).all(tenant))


async def account(uow: UnitOfWork, tenant: int, account_id: int) -> AccountView:
    row = await ChannelRepo(uow.session).get(tenant, account_id)
    if row is None:
        raise NotFoundError("channel_account", account_id)
    return account_view(row)


async def account_by_code(uow: UnitOfWork, tenant: int, code: str) -> AccountView | None:
    row = await ChannelRepo(uow.session).by_code(tenant, code)
    return account_view(row) if row is not None else None


def _check(kind: str, values: dict[str, str]) -> None:
    if kind not in KINDS:
        raise ChannelInputError("kind", "unknown")
    app_id = values.get("app_id")
    if app_id is not None and app_id and not _APP_ID.fullmatch(app_id):
        raise ChannelInputError("app_id", "format")
    token = values.get("token")
    if token and not _TOKEN.fullmatch(token):
        raise ChannelInputError("token", "format")
    aes = values.get("aes_key")
    if aes and not _AES.fullmatch(aes):
        raise ChannelInputError("aes_key", "format")
    hook = values.get("webhook_key")
    if hook and not _HOOK_KEY.fullmatch(hook):  # only the key: the URL is built on WeCom's host
        raise ChannelInputError("webhook_key", "format")
    agent = values.get("agent_id")
    if agent and not _AGENT.fullmatch(agent):
        raise ChannelInputError("agent_id", "format")
    sub = values.get("subtype")
    if kind == "mp" and sub is not None and sub not in MP_SUBTYPES:
        raise ChannelInputError("subtype", "unknown")
    for k, v in values.items():
        if len(v) > 128 or any(c in v for c in "\x00\r\n"):
            raise ChannelInputError(k, "format")
    name = values.get("name")
    if name is not None and len(name) > 64:
        raise ChannelInputError("name", "length")


async def save_account(uow: UnitOfWork, tenant: int, account_id: int | None, *, kind: str, code: str,
                       values: dict[str, str], pay_account_id: int | None, enabled: bool,
                       actor: str, now: datetime) -> AccountView:
    """Create (`account_id` None) or update an account. `values` holds PLAIN fields and
    SECRETS; an empty secret keeps what is stored. Audited without secret values."""
    repo = ChannelRepo(uow.session)
    _check(kind, values)
    plain = {k: values[k] for k in PLAIN if k in values}
    secrets_given = {k: values[k] for k in SECRETS if values.get(k)}
    if pay_account_id is not None:
        from storage.pay_repos import PayAccountRepo

        if await PayAccountRepo(uow.session).for_merchant(tenant, pay_account_id) is None:
            raise ChannelInputError("pay_account_id", "unknown")
    if account_id is None:
        if not _CODE.fullmatch(code) or code == PRIMARY_CODE:
            raise ChannelInputError("code", "format")
        if await repo.by_code(tenant, code) is not None:
            raise ChannelInputError("code", "taken")
        made = await repo.add(ChannelAccount(
            tenant_id=tenant, kind=kind, code=code, pay_account_id=pay_account_id, enabled=enabled,
            is_primary=False, created_at=now, updated_at=now, menu="",
            **{"subtype": "service" if kind == "mp" else "", **plain, **secrets_given}))
        changed = sorted({"kind", "code", *plain, *secrets_given})
        uow.audit(tenant, actor, "channel.create", f"channel:{made.id}",
                  after={**audit_values(made), "changed": changed})
        return account_view(made)
    row = await repo.get(tenant, account_id)
    if row is None:
        raise NotFoundError("channel_account", account_id)
    if row.kind != kind:
        raise ChannelInputError("kind", "fixed")
    changes = {k: v for k, v in {**plain, **secrets_given}.items() if getattr(row, k) != v}
    if row.pay_account_id != pay_account_id:
        changes["pay_account_id"] = pay_account_id  # type: ignore[assignment]
    if bool(row.enabled) != enabled and not row.is_primary:
        changes["enabled"] = enabled  # type: ignore[assignment]
    if changes:
        before = audit_values(row)
        await repo.set_fields(row, now, **changes)
        if row.is_primary:
            await repo.copy_to_tenant(tenant, row)
        uow.audit(tenant, actor, "channel.update", f"channel:{row.id}", before=before,
                  after={**audit_values(row), "changed": sorted(changes)})
    return account_view(row)


def audit_values(row: ChannelAccount) -> dict[str, object]:
    """What the audit log keeps of an account: its plain fields, and for each secret only
    whether it is set (never the value)."""
    out: dict[str, object] = {k: getattr(row, k) for k in ("kind", "code", *PLAIN)}
    out["pay_account_id"] = row.pay_account_id
    out["enabled"] = bool(row.enabled)
    for k in SECRETS:
        out[k] = secret_mark(getattr(row, k) or "")
    return out


def secret_mark(value: str) -> str:
    """A secret as the audit log shows it: "***" when set, "" when not (the entry's
    "changed" list says whether it was replaced)."""
    return "***" if value else ""


async def sync_primary(uow: UnitOfWork, tenant: int, now: datetime) -> None:
    """The tenant row's official account → its primary channel account (created if missing):
    after the settings page or the demo seed wrote the tenant's columns."""
    repo = ChannelRepo(uow.session)
    t = await repo.tenant_row(tenant)
    if t is None:
        return
    row = await repo.primary(tenant)
    values = dict(app_id=t.wechat_app_id, app_secret=t.wechat_app_secret, token=t.wechat_token,
                  aes_key=t.wechat_aes_key)
    if row is None:
        await repo.add(ChannelAccount(tenant_id=tenant, kind="mp", subtype="service", code=PRIMARY_CODE,
                                      name=t.name, is_primary=True, enabled=True, created_at=now,
                                      updated_at=now, menu="", **values))
    elif any(getattr(row, k) != v for k, v in values.items()):
        await repo.set_fields(row, now, **values)


async def wecom_accounts(uow: UnitOfWork, tenant: int) -> tuple[AccountView | None, AccountView | None]:
    """The tenant's enabled WeCom rows in use: (the callback — a group robot, else a corp
    app, with token and AES key; the robot whose webhook key announcements go to). The
    oldest row of each wins."""
    rows = [a for a in await accounts(uow, tenant) if a.enabled and a.kind in ("wecom_bot", "wecom_app")]
    callback = next((a for kind in ("wecom_bot", "wecom_app") for a in rows
                     if a.kind == kind and a.token and a.aes_key), None)
    robot = next((a for a in rows if a.kind == "wecom_bot" and a.webhook_key), None)
    return callback, robot


async def sync_env_account(uow: UnitOfWork, tenant: int, *, kind: str, code: str, name: str,
                           values: dict[str, str], now: datetime) -> None:
    """An account the environment configures (the demo tenant's mini-program from
    MINI_APP_ID / MINI_APP_SECRET): created if missing, its credentials set to `values`."""
    repo = ChannelRepo(uow.session)
    row = await repo.by_code(tenant, code)
    if row is None:
        await repo.add(ChannelAccount(tenant_id=tenant, kind=kind, subtype="", code=code, name=name,
                                      is_primary=False, enabled=True, created_at=now, updated_at=now, menu="",
                                      **values))
    elif row.kind == kind and any(getattr(row, k) != v for k, v in values.items()):
        await repo.set_fields(row, now, **values)


# -- the official account's menu -------------------------------------------------------------

#: WeChat's limits for menu/create (bytes of UTF-8): 1–3 buttons, 1–5 sub-buttons each, a
#: top button's name ≤ 16 bytes, a sub-button's ≤ 60, a click key ≤ 128, a URL ≤ 1024
MENU_TOP_MAX, MENU_SUB_MAX = 3, 5
NAME_TOP_BYTES, NAME_SUB_BYTES, KEY_BYTES, URL_BYTES = 16, 60, 128, 1024
BUTTON_TYPES = ("click", "view", "miniprogram")
_PAGEPATH = re.compile(r"[A-Za-z0-9_./?=&%-]{1,256}")


def parse_menu(raw: str) -> dict[str, object]:
    """A menu as WeChat's menu/create takes it: 1–3 buttons, each a click/view/miniprogram
    button or a `sub_button` list of 1–5 of them, within WeChat's length limits. Checked
    here so the console says what is wrong before WeChat does."""
    if len(raw.encode()) > MENU_MAX_BYTES:
        raise ChannelInputError("menu", "length")
    try:
        menu = json.loads(raw)
    except ValueError:
        raise ChannelInputError("menu", "json") from None
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list) \
            or not 1 <= len(menu["button"]) <= MENU_TOP_MAX:
        raise ChannelInputError("menu", "buttons")
    for top in menu["button"]:
        if isinstance(top, dict) and "sub_button" in top:
            _check_name(top, NAME_TOP_BYTES)
            subs = top["sub_button"]
            if not isinstance(subs, list) or not 1 <= len(subs) <= MENU_SUB_MAX:
                raise ChannelInputError("menu", "sub_button")
            for sub in subs:
                _check_button(sub, NAME_SUB_BYTES)
        else:
            _check_button(top, NAME_TOP_BYTES)
    return menu


def _check_name(b: object, max_bytes: int) -> None:
    if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not b["name"].strip():
        raise ChannelInputError("menu", "name")
    if len(b["name"].encode()) > max_bytes or any(c in b["name"] for c in "\x00\r\n"):
        raise ChannelInputError("menu", "name_length")


def _check_button(b: object, name_bytes: int) -> None:
    _check_name(b, name_bytes)
    assert isinstance(b, dict)
    kind = b.get("type")
    need = {"click": ("key",), "view": ("url",), "miniprogram": ("appid", "pagepath", "url"),
            "scancode_push": ("key",), "scancode_waitmsg": ("key",),
            "location_select": ("key",)}.get(kind if isinstance(kind, str) else "")
    if need is None or not all(isinstance(b.get(n), str) and b[n] for n in need):
        raise ChannelInputError("menu", "button")
    if "key" in need and len(b["key"].encode()) > KEY_BYTES:
        raise ChannelInputError("menu", "key_length")
    if "url" in need:
        if not str(b["url"]).startswith(("http://", "https://")) or any(c.isspace() for c in b["url"]):
            raise ChannelInputError("menu", "url")
        if len(b["url"].encode()) > URL_BYTES:
            raise ChannelInputError("menu", "url_length")
    if kind == "miniprogram" and (not _APP_ID.fullmatch(b["appid"]) or not _PAGEPATH.fullmatch(b["pagepath"])):
        raise ChannelInputError("menu", "miniprogram")


def menu_from_form(form: dict[str, str]) -> dict[str, object]:
    """The console's menu grid → WeChat's menu JSON. Field names: `b{i}_{f}` for top button
    i (0–2) and `b{i}_s{j}_{f}` for its sub-button j (0–4), f one of name, type (click /
    view / miniprogram; a top button with sub-buttons has none), key, url, appid, pagepath.
    Blank rows are skipped; what is left is checked by `parse_menu`."""
    def one(prefix: str) -> dict[str, str] | None:
        name = form.get(f"{prefix}_name", "").strip()
        kind = form.get(f"{prefix}_type", "").strip()
        if not name and not kind:
            return None
        b = {"type": kind, "name": name}
        if kind == "click":
            b["key"] = form.get(f"{prefix}_key", "").strip()
        elif kind == "view":
            b["url"] = form.get(f"{prefix}_url", "").strip()
        elif kind == "miniprogram":
            b.update(appid=form.get(f"{prefix}_appid", "").strip(), url=form.get(f"{prefix}_url", "").strip(),
                     pagepath=form.get(f"{prefix}_pagepath", "").strip())
        elif kind:
            raise ChannelInputError("menu", "button")
        return b

    buttons: list[dict[str, object]] = []
    for i in range(MENU_TOP_MAX):
        subs = [s for j in range(MENU_SUB_MAX) if (s := one(f"b{i}_s{j}")) is not None]
        if subs:
            name = form.get(f"b{i}_name", "").strip()
            buttons.append({"name": name, "sub_button": subs})
        elif (top := one(f"b{i}")) is not None:
            buttons.append(dict(top))
    menu: dict[str, object] = {"button": buttons}
    return parse_menu(json.dumps(menu, ensure_ascii=False))


def menu_rows(menu_json: str) -> list[dict[str, object]]:
    """A stored menu as the console's grid: three top rows, each with five sub rows."""
    try:
        menu = json.loads(menu_json) if menu_json else {}
    except ValueError:
        menu = {}
    tops = menu.get("button", []) if isinstance(menu, dict) else []
    out: list[dict[str, object]] = []
    for i in range(MENU_TOP_MAX):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        subs = top.get("sub_button") or []
        out.append({**{k: str(top.get(k, "")) for k in ("name", "type", "key", "url", "appid", "pagepath")},
                    "subs": [{k: str(s.get(k, "")) if isinstance(s, dict) else ""
                              for k in ("name", "type", "key", "url", "appid", "pagepath")}
                             for s in (subs[j] if j < len(subs) else {} for j in range(MENU_SUB_MAX))]})
        if subs:
            out[-1]["type"] = ""
    return out


async def save_menu(uow: UnitOfWork, tenant: int, account_id: int, menu: dict[str, object], *, actor: str,
                    now: datetime) -> AccountView:
    """Store an official account's menu (already checked by `parse_menu`), audited with the
    menu before and after."""
    repo = ChannelRepo(uow.session)
    row = await repo.get(tenant, account_id)
    if row is None:
        raise NotFoundError("channel_account", account_id)
    if row.kind != "mp":
        raise ChannelInputError("menu", "kind")
    text = json.dumps(parse_menu(json.dumps(menu, ensure_ascii=False)), ensure_ascii=False)
    if text != (row.menu or ""):
        before = row.menu or ""
        await repo.set_fields(row, now, menu=text)
        uow.audit(tenant, actor, "channel.menu", f"channel:{row.id}",
                  before={"menu": json.loads(before) if before else None}, after={"menu": menu})
    return account_view(row)


async def menu_published(uow: UnitOfWork, tenant: int, account_id: int, *, menu: str, errcode: int, errmsg: str,
                         actor: str, now: datetime) -> None:
    """Record a publish attempt: the JSON sent and WeChat's answer, audited either way; a
    success stamps `menu_published_at`."""
    repo = ChannelRepo(uow.session)
    row = await repo.get(tenant, account_id)
    if row is None:
        raise NotFoundError("channel_account", account_id)
    if errcode == 0:
        await repo.set_fields(row, now, menu_published_at=now)
    uow.audit(tenant, actor, "channel.menu_publish", f"channel:{row.id}",
              after={"menu": json.loads(menu) if menu else None, "errcode": errcode, "errmsg": errmsg[:200]})


# -- one member across the tenant's accounts ---------------------------------------------------

async def link_unionid(uow: UnitOfWork, tenant: int, member_id: int, unionid: str, *, now: datetime) -> int:
    """WeChat said `member_id`'s identity has `unionid`: another member with it is the same
    person, merged through the core's merge path (the older one is kept); else the member
    takes the unionid. Returns the member id that holds it now. A member that already holds
    another unionid is left alone (two people can't share an identity)."""
    from social_mall.loyalty.errors import MergeRefusedError
    from social_mall.loyalty.merge import merge_members

    repo = ChannelRepo(uow.session)
    mine = await repo.unionid_of(tenant, member_id)
    if mine and mine != unionid:
        return member_id
    other = await repo.other_with_unionid(tenant, member_id, unionid)
    if other is None:
        if not mine:
            await repo.set_unionid(tenant, member_id, unionid)
        return member_id
    try:
        result = await merge_members(uow, tenant, member_id, other, via="unionid", actor="system:unionid", now=now)
    except MergeRefusedError:
        return other
    await repo.set_unionid(tenant, result.kept, unionid)
    return result.kept


async def member_openids(uow: UnitOfWork, tenant: int, member_id: int) -> list[str]:
    """The member's official-account openids (of every account of the tenant), newest first."""
    return await ChannelRepo(uow.session).identities(tenant, member_id, "mp")


async def order_channel(uow: UnitOfWork, tenant: int, order_id: int) -> tuple[int, int]:
    """(channel account, merchant) an order was placed through and is paid to; 0 for the
    tenant's primary account / default merchant."""
    account, merchant = await ChannelRepo(uow.session).order_accounts(tenant, order_id)
    return account or 0, merchant or 0
