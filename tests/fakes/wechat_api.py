"""A fake api.weixin.qq.com for tests: an aiohttp app run by pytest-aiohttp's `aiohttp_server`.

It keeps the real server's rules that bite clients: tokens from /cgi-bin/token and
/cgi-bin/stable_token are separate lines (a new basic token kills the old basic one;
a stable token only changes on force_refresh, at most once per 30 s, or on expiry),
JSON bodies whose Chinese arrives as \\uXXXX escapes are NOT decoded (WeChat shows the
escapes literally), customer-service news carries one article, QR scene rules, one-shot
OAuth codes, JS-SDK tickets (`getticket`: the same ticket until its last 5 minutes, a new
one then while the old one lives out its 7200 s) and `/fake/jsconfig`, where a stubbed
`wx.config` in a test browser has its signature checked like the WeChat client does.
Every request is recorded in `calls`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40037: "invalid template_id",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41005: "media data missing",
    42001: "access_token expired",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    47003: "argument invalid! data.thing1.value exceeds limit",
    44002: "empty post data",
    45008: "article size out of limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    45065: "clientmsgid exist",
    40130: "invalid openid list size, at least two openid",
    40032: "invalid openid list size",
    45056: "too many tag now, no need to add new",
    45057: "can't delete the tag that has too many fans",
    45058: "can't modify sys tag",
    45059: "tag list size out of limit",
    45157: "invalid tag name",
    45158: "tag name too long",
    45159: "invalid tag id",
    49003: "not match openid with appid",
    45028: "has no masssend quota",
    47001: "data format error",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    48001: "api unauthorized",
}
QR_TEMP_MAX = 2_592_000
QR_TEMP_DEFAULT = 30
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_EXTS = {"jpg", "jpeg", "png", "gif", "bmp"}
_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    raw: bytes = b""


@dataclass
class _Token:
    value: str
    kind: str  # "basic" | "stable" | "sns"
    expires_at: float
    revoked: bool = False
    openid: str = ""
    scope: str = ""
    appid: str = ""  # the account a basic/stable token belongs to


@dataclass
class _Code:
    openid: str
    scope: str
    used: bool = False


@dataclass
class _Fail:
    errcode: int
    errmsg: str
    status: int
    app: str | None = None    # only a call with this app id's token ("" for the primary's: any)


@dataclass
class _Ticket:
    value: str
    kind: str  # "jsapi" | "wx_card"
    expires_at: float


@dataclass
class FakeUser:
    openid: str
    nickname: str = "微信用户"
    unionid: str | None = None
    headimgurl: str = ""
    appid: str = ""   # the account they follow ("": whichever asks)


@dataclass
class FakeWeChatAPI:
    """State and handlers of the fake. Build the app with `app()`."""

    app_id: str = "wx_fake_app"
    app_secret: str = "fake_secret"
    mini_app_id: str = "wx_fake_mini"      # the mini-program (its own app id/secret: /sns/jscode2session)
    mini_app_secret: str = "fake_mini_secret"
    token_ttl: int = 7200
    force_refresh_interval: float = 30.0
    kefu_quota: int | None = None  # messages per user between interactions (real: 5)
    clock: Callable[[], float] = time.monotonic
    calls: list[Call] = field(default_factory=list)
    outside_48h: set[str] = field(default_factory=set)
    unsubscribed: set[str] = field(default_factory=set)
    template_ids: set[str] | None = None  # None: any template id is accepted
    media: dict[str, bytes] = field(default_factory=dict)
    qr_scenes: dict[str, str | int] = field(default_factory=dict)
    users: dict[str, FakeUser] = field(default_factory=dict)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    templates_sent: list[dict[str, Any]] = field(default_factory=list)
    subscribes_sent: list[dict[str, Any]] = field(default_factory=list)   # accepted 订阅通知 (bizsend)
    # 订阅通知 consents WeChat holds: (openid, template id) → messages left (a 「允许」 in the
    # pop-up adds one: `allow_subscribe`); bizsend without one is refused 43101
    subscribe_consents: dict[tuple[str, str], int] = field(default_factory=dict)
    mass_sent: list[dict[str, Any]] = field(default_factory=list)      # accepted mass/send + sendall bodies
    mass_previews: list[dict[str, Any]] = field(default_factory=list)  # accepted mass/preview bodies
    materials: dict[str, bytes] = field(default_factory=dict)   # permanent images (material/add_material)
    drafts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # draft/add: media_id → its articles
    draft_apps: dict[str, str] = field(default_factory=dict)                # draft media_id → the app that made it
    mass_apps: dict[int, str] = field(default_factory=dict)                 # mass msg_id → the app that sent it
    mini_apps: dict[str, str] = field(default_factory=dict)  # more mini-programs: app id → AppSecret (jscode2session)
    more_apps: dict[str, str] = field(default_factory=dict)  # other official accounts: app id → AppSecret
    # openids known to belong to one official account (app id): a message to one of them with
    # another account's token is refused 40003 (invalid openid), as WeChat does
    openid_apps: dict[str, str] = field(default_factory=dict)
    delivered_via: list[tuple[str, str]] = field(default_factory=list)  # (app id, touser) of each delivered
    # media ids known to belong to one official account (app id): a member's image sent to it, or
    # an upload with its token; another account's token gets 40007 (invalid media_id) for them
    media_apps: dict[str, str] = field(default_factory=dict)
    qr_apps: dict[str, str] = field(default_factory=dict)   # QR ticket → the app id whose token made it
    qr_urls: dict[str, str] = field(default_factory=dict)   # QR ticket → the URL its image encodes

    def __post_init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._stable: dict[str, str] = {}          # app id → its current stable token
        self._last_force: dict[str, float] = {}    # app id → when it last forced a refresh
        self.menus: dict[str, dict[str, Any]] = {}  # app id → the menu menu/create accepted
        self._codes: dict[str, _Code] = {}
        self._js_codes: dict[str, _Code] = {}
        self.session_keys: list[str] = []  # every session_key handed out (never to be echoed or logged)
        self._fails: dict[str, deque[_Fail]] = defaultdict(deque)
        self._lost: dict[str, deque[int]] = defaultdict(deque)   # path → HTTP statuses answered after doing the work
        self._kefu_count: dict[str, int] = defaultdict(int)
        self._msgid = itertools.count(1_000_000_001)
        self._tickets: list[_Ticket] = []
        # app id → its user tags (tags/create…): id → [name, openids]; 0/1/2 are WeChat's own
        self.user_tags: dict[str, dict[int, tuple[str, set[str]]]] = defaultdict(
            lambda: {2: ("星标组", set())})
        self._tag_ids = itertools.count(100)

    # -- test helpers -------------------------------------------------------------------

    def app(self) -> web.Application:
        """A fresh aiohttp app bound to this state."""
        app = web.Application(client_max_size=IMAGE_MAX_BYTES + 64 * 1024,
                              middlewares=[self._record])
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/cgi-bin/token", self._token),
            ("POST", "/cgi-bin/stable_token", self._stable_token),
            ("POST", "/cgi-bin/message/custom/send", self._custom_send),
            ("POST", "/cgi-bin/message/template/send", self._template_send),
            ("POST", "/cgi-bin/message/subscribe/bizsend", self._subscribe_send),
            ("POST", "/cgi-bin/message/mass/send", self._mass_send),
            ("POST", "/cgi-bin/message/mass/sendall", self._mass_send),
            ("POST", "/cgi-bin/message/mass/preview", self._mass_preview),
            ("POST", "/cgi-bin/qrcode/create", self._qrcode_create),
            ("POST", "/cgi-bin/menu/create", self._menu_create),
            ("GET", "/cgi-bin/user/info", self._user_info),
            ("POST", "/cgi-bin/tags/create", self._tags_create),
            ("GET", "/cgi-bin/tags/get", self._tags_get),
            ("POST", "/cgi-bin/tags/update", self._tags_update),
            ("POST", "/cgi-bin/tags/delete", self._tags_delete),
            ("POST", "/cgi-bin/tags/members/batchtagging", self._tags_members),
            ("POST", "/cgi-bin/tags/members/batchuntagging", self._tags_members),
            ("POST", "/cgi-bin/user/tag/get", self._tag_users),
            ("POST", "/cgi-bin/tags/getidlist", self._tags_of_user),
            ("POST", "/cgi-bin/media/upload", self._media_upload),
            ("POST", "/cgi-bin/material/add_material", self._material_add),
            ("POST", "/cgi-bin/draft/add", self._draft_add),
            ("GET", "/cgi-bin/media/get", self._media_get),
            ("GET", "/sns/oauth2/access_token", self._sns_token),
            ("GET", "/sns/userinfo", self._sns_userinfo),
            ("GET", "/sns/jscode2session", self._jscode2session),
            ("GET", "/cgi-bin/ticket/getticket", self._getticket),
            ("POST", "/fake/jsconfig", self._jsconfig),
            ("OPTIONS", "/fake/jsconfig", self._cors),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        return app

    @property
    def token_requests(self) -> int:
        """Requests to /cgi-bin/token and /cgi-bin/stable_token so far."""
        return sum(c.path in ("/cgi-bin/token", "/cgi-bin/stable_token") for c in self.calls)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def apps_calling(self, path: str) -> list[str]:
        """The app id of each call to `path`, by its access token ("" for an unknown token)."""
        found = (self._tokens.get(c.query.get("access_token", "")) for c in self.calls_to(path))
        return [t.appid if t is not None else "" for t in found]

    def sent_messages(self, touser: str | None = None) -> list[dict[str, Any]]:
        """Customer-service messages WeChat accepted, oldest first."""
        return [m for m in self.delivered if touser is None or m["touser"] == touser]

    def allow_subscribe(self, openid: str, template_id: str) -> None:
        """The member tapped 「允许」 for `template_id` in WeChat's pop-up: one more message."""
        key = (openid, template_id)
        self.subscribe_consents[key] = self.subscribe_consents.get(key, 0) + 1

    def sent_templates(self, touser: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.templates_sent if touser is None or m["touser"] == touser]

    def fail_next(self, path: str, errcode: int, errmsg: str | None = None,
                  status: int = 200, *, app: str | None = None) -> None:
        """The next request to `path` answers this error (queue: call again for more);
        with `app`, the next one made with that app id's token (other apps' pass by)."""
        self._fails[path].append(_Fail(errcode, errmsg or ERRMSG.get(errcode, "error"), status, app))

    def lose_next_answer(self, path: str, status: int = 504) -> None:
        """The next request to `path` is carried out (a mass send is taken and recorded), but
        its answer is lost: the caller gets HTTP `status` (a gateway timeout) instead."""
        self._lost[path].append(status)

    def expire_tokens(self) -> None:
        """Every access token issued so far is now expired (42001)."""
        now = self.clock()
        for tok in self._tokens.values():
            tok.expires_at = min(tok.expires_at, now)

    def revoke_tokens(self) -> None:
        """Every access token issued so far is now invalid (40001)."""
        for tok in self._tokens.values():
            tok.revoked = True

    def interact(self, openid: str) -> None:
        """The user just messaged the account: the 48 h window and quota start over."""
        self.outside_48h.discard(openid)
        self._kefu_count.pop(openid, None)

    def mint_code(self, openid: str, scope: str = "snsapi_base", *,
                  nickname: str = "微信用户", unionid: str | None = None) -> str:
        """An OAuth code as WeChat would append to the redirect_uri."""
        self.users.setdefault(openid, FakeUser(openid, nickname, unionid))
        code = secrets.token_hex(16)
        self._codes[code] = _Code(openid, scope)
        return code

    def mint_js_code(self, openid: str, *, unionid: str | None = None) -> str:
        """A mini-program `wx.login` code (one use, like the real one) for `openid`; the
        answer carries `unionid` when the user has one (bound open platform)."""
        self.users.setdefault(openid, FakeUser(openid, unionid=unionid))
        code = secrets.token_hex(16)
        self._js_codes[code] = _Code(openid, "jscode")
        return code

    def scene_for_ticket(self, ticket: str) -> str | int:
        """The scene a QR ticket encodes (KeyError when the fake never issued it)."""
        return self.qr_scenes[ticket]

    @property
    def jsapi_ticket(self) -> str:
        """The newest JS-SDK ticket issued (KeyError-like IndexError when none was)."""
        return [t for t in self._tickets if t.kind == "jsapi"][-1].value

    def js_config_ok(self, *, app_id: str, timestamp: str | int, nonce: str, signature: str, url: str) -> bool:
        """What the WeChat client checks on `wx.config`: our appid and a signature over a
        jsapi ticket still valid and the page's URL (without its #…)."""
        now = self.clock()
        if app_id != self.app_id:
            return False
        page = url.split("#", 1)[0]
        for t in self._tickets:
            if t.kind != "jsapi" or t.expires_at <= now:
                continue
            plain = f"jsapi_ticket={t.value}&noncestr={nonce}&timestamp={timestamp}&url={page}"
            if hashlib.sha1(plain.encode()).hexdigest() == signature:
                return True
        return False

    def valid_token(self, value: str) -> bool:
        return self._check_token(value, ("basic", "stable")) == 0

    # -- plumbing ---------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read() if request.content_type != "multipart/form-data" else b""
        parsed = _loads(raw) if request.content_type == "application/json" or (
            raw[:1] in (b"{", b"[")) else None
        self.calls.append(Call(request.method, request.path, dict(request.query), parsed, raw))
        fails = self._fails.get(request.path)
        fail = next((f for f in fails if f.app is None or f.app == self._app_of(request)), None) if fails else None
        if fails and fail is not None:
            fails.remove(fail)
            return web.json_response({"errcode": fail.errcode, "errmsg": fail.errmsg},
                                     status=fail.status)
        lost = self._lost.get(request.path)
        if lost:
            status = lost.popleft()
            await handler(request)
            return web.Response(status=status, text="gateway timeout")
        return await handler(request)

    def _issue(self, kind: str, openid: str = "", scope: str = "", appid: str = "") -> _Token:
        tok = _Token(secrets.token_urlsafe(48), kind, self.clock() + self.token_ttl,
                     openid=openid, scope=scope, appid=appid)
        self._tokens[tok.value] = tok
        return tok

    def _check_token(self, value: str | None, kinds: tuple[str, ...]) -> int:
        if not value:
            return 41001
        tok = self._tokens.get(value)
        if tok is None or tok.kind not in kinds or tok.revoked:
            return 40001
        if tok.expires_at <= self.clock():
            return 42001
        return 0

    def _app_of(self, request: web.Request) -> str:
        """The app id of the (checked) access token a call came with."""
        tok = self._tokens.get(request.query.get("access_token") or "")
        return tok.appid if tok is not None else ""

    def _remaining(self, tok: _Token) -> int:
        return max(int(tok.expires_at - self.clock()), 0)

    async def _json_body(self, request: web.Request) -> Any:
        return _loads(await request.read())

    # -- tokens -----------------------------------------------------------------------

    def _credentials_error(self, appid: Any, secret: Any) -> int:
        if appid in self.more_apps:  # another official account served by this fake
            return 0 if secret == self.more_apps[appid] else 40125
        minis = {self.mini_app_id: self.mini_app_secret, **self.mini_apps}
        if appid in minis:  # a mini-program gets its access token the same way
            return 0 if secret == minis[appid] else 40125
        if appid != self.app_id:
            return 40013
        if secret != self.app_secret:
            return 40125
        return 0

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return _err(40002)
        if code := self._credentials_error(q.get("appid"), q.get("secret")):
            return _err(code)
        for tok in self._tokens.values():
            if tok.kind == "basic" and tok.appid == q.get("appid"):  # tokens are per account
                tok.revoked = True
        tok = self._issue("basic", appid=str(q.get("appid")))
        return _ok(access_token=tok.value, expires_in=self.token_ttl, errcode=None)

    async def _stable_token(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return _err(47001)
        if body.get("grant_type") != "client_credential":
            return _err(40002)
        if code := self._credentials_error(body.get("appid"), body.get("secret")):
            return _err(code)
        tok = self._stable_for(bool(body.get("force_refresh", False)), str(body.get("appid")))
        return _ok(access_token=tok.value, expires_in=self._remaining(tok), errcode=None)

    def _stable_for(self, force: bool, appid: str) -> _Token:
        now = self.clock()
        current = self._tokens.get(self._stable[appid]) if appid in self._stable else None
        usable = current is not None and not current.revoked and current.expires_at > now
        last_force = self._last_force.get(appid)
        if force and usable and last_force is not None \
                and now - last_force < self.force_refresh_interval:
            assert current is not None
            return current  # WeChat: forcing again within 30 s does not refresh
        if usable and not force:
            assert current is not None
            if current.expires_at - now > 300:
                return current
            # last 5 minutes: a new token, the old one stays valid until it expires
        elif current is not None and force:
            current.revoked = True
        if force:
            self._last_force[appid] = now
        tok = self._issue("stable", appid=appid)
        self._stable[appid] = tok.value
        return tok

    # -- the custom menu -------------------------------------------------------------------

    async def _menu_create(self, request: web.Request) -> web.Response:
        """menu/create with WeChat's checks (1–3 buttons, 1–5 sub-buttons, names ≤ 16 / 60
        bytes, key ≤ 128, url ≤ 1024, known types with their fields); the accepted menu is
        kept per account."""
        value = request.query.get("access_token")
        if code := self._check_token(value, ("basic", "stable")):
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("button"), list):
            return _err(47001)
        if code := _menu_error(body["button"]):
            return _err(code)
        self.menus[self._tokens[value or ""].appid] = body
        return _ok()

    # -- user tags (用户标签管理) ---------------------------------------------------------
    # tags/create {"tag": {"name"}} → {"tag": {"id", "name"}}; tags/update {"tag": {"id", "name"}};
    # tags/delete {"tag": {"id"}}; tags/members/batch(un)tagging {"openid_list": [≤ 50], "tagid"};
    # tags/get → {"tags": [{"id", "name", "count"}]}; user/tag/get {"tagid", "next_openid"};
    # tags/getidlist {"openid"} → {"tagid_list"}. At most 100 tags an account (45056), names
    # 1..30 bytes (45158) and unique (45157), 0/1/2 are WeChat's own (45058), unknown id
    # 45159, a follower holds at most 20 tags (45059), openids of another account 49003.

    TAGS_MAX = 100
    TAG_NAME_BYTES = 30
    SYS_TAGS = (0, 1, 2)

    def _tags_app(self, request: web.Request) -> tuple[int, str]:
        value = request.query.get("access_token")
        if code := self._check_token(value, ("basic", "stable")):
            return code, ""
        return 0, self._tokens[value].appid if value else ""

    def _tag_name_error(self, tags: dict[int, tuple[str, set[str]]], name: Any, tag_id: int | None) -> int:
        if not isinstance(name, str) or not name.strip():
            return 45157
        if len(name.encode()) > self.TAG_NAME_BYTES:
            return 45158
        if any(n == name and i != tag_id for i, (n, _) in tags.items()):
            return 45157
        return 0

    async def _tags_create(self, request: web.Request) -> web.Response:
        code, app = self._tags_app(request)
        if code:
            return _err(code)
        body = await self._json_body(request)
        tag = body.get("tag") if isinstance(body, dict) else None
        if not isinstance(tag, dict):
            return _err(47001)
        tags = self.user_tags[app]
        if code := self._tag_name_error(tags, tag.get("name"), None):
            return _err(code)
        if sum(i not in self.SYS_TAGS for i in tags) >= self.TAGS_MAX:
            return _err(45056)
        tag_id = next(self._tag_ids)
        tags[tag_id] = (tag["name"], set())
        return _ok(errcode=None, tag={"id": tag_id, "name": tag["name"]})

    async def _tags_get(self, request: web.Request) -> web.Response:
        code, app = self._tags_app(request)
        if code:
            return _err(code)
        return _ok(errcode=None, tags=[{"id": i, "name": n, "count": len(who)}
                                       for i, (n, who) in sorted(self.user_tags[app].items())])

    def _tag_of(self, body: Any) -> tuple[int, dict[str, Any]]:
        """(error, the body's tag) of an update/delete: the id must be an existing non-system tag."""
        tag = body.get("tag") if isinstance(body, dict) else None
        if not isinstance(tag, dict) or not isinstance(tag.get("id"), int):
            return 47001, {}
        return (45058 if tag["id"] in self.SYS_TAGS else 0), tag

    async def _tags_update(self, request: web.Request) -> web.Response:
        code, app = self._tags_app(request)
        if code:
            return _err(code)
        code, tag = self._tag_of(await self._json_body(request))
        tags = self.user_tags[app]
        if code or tag["id"] not in tags:
            return _err(code or 45159)
        if code := self._tag_name_error(tags, tag.get("name"), tag["id"]):
            return _err(code)
        tags[tag["id"]] = (tag["name"], tags[tag["id"]][1])
        return _ok()

    async def _tags_delete(self, request: web.Request) -> web.Response:
        code, app = self._tags_app(request)
        if code:
            return _err(code)
        code, tag = self._tag_of(await self._json_body(request))
        tags = self.user_tags[app]
        if code or tag["id"] not in tags:
            return _err(code or 45159)
        if len(tags[tag["id"]][1]) > 100_000:
            return _err(45057)
        del tags[tag["id"]]
        return _ok()

    def _follower_of(self, app: str, openid: Any) -> int:
        if not isinstance(openid, str) or not openid:
            return 40003
        user = self.users.get(openid)
        if user is not None and getattr(user, "appid", "") not in ("", app):
            return 49003
        if self.openid_apps.get(openid, app) != app:   # known to be another account's openid
            return 40003
        return 0

    async def _tags_members(self, request: web.Request) -> web.Response:
        code, app = self._tags_app(request)
        if code:
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("tagid"), int):
            return _err(47001)
        openids = body.get("openid_list")
        if not isinstance(openids, list) or not openids:
            return _err(47001)
        if len(openids) > 50:
            return _err(40032)
        tags = self.user_tags[app]
        if body["tagid"] not in tags or body["tagid"] in (0, 1):
            return _err(45159)
        for o in openids:
            if code := self._follower_of(app, o):
                return _err(code)
        who = tags[body["tagid"]][1]
        if request.path.endswith("/batchtagging"):
            held = {o: sum(o in w for _n, w in tags.values()) for o in openids}
            if any(held[o] >= 20 and o not in who for o in openids):
                return _err(45059)
            who.update(openids)
        else:
            who.difference_update(openids)
        return _ok()

    async def _tag_users(self, request: web.Request) -> web.Response:
        """user/tag/get: a tag's followers, 10,000 a page from `next_openid`."""
        code, app = self._tags_app(request)
        if code:
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("tagid"), int):
            return _err(47001)
        tag = self.user_tags[app].get(body["tagid"])
        if tag is None:
            return _err(45159)
        ordered = sorted(tag[1])
        after = body.get("next_openid") or ""
        page = [o for o in ordered if o > after][:10_000]
        return _ok(errcode=None, count=len(page), data={"openid": page}, next_openid=page[-1] if page else "")

    async def _tags_of_user(self, request: web.Request) -> web.Response:
        code, app = self._tags_app(request)
        if code:
            return _err(code)
        body = await self._json_body(request)
        openid = body.get("openid") if isinstance(body, dict) else None
        if code := self._follower_of(app, openid):
            return _err(code)
        return _ok(errcode=None, tagid_list=sorted(i for i, (_n, w) in self.user_tags[app].items() if openid in w))

    def tag_followers(self, name: str, app_id: str | None = None) -> set[str]:
        """Test helper: the openids holding the account's tag of that name (empty: no such tag)."""
        for n, who in self.user_tags[app_id or self.app_id].values():
            if n == name:
                return set(who)
        return set()

    async def _user_info(self, request: web.Request) -> web.Response:
        """cgi-bin/user/info: a follower's profile; unionid only when the account is bound to
        an open-platform account and the user has one."""
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        openid = request.query.get("openid", "")
        if not openid:
            return _err(40003)
        user = self.users.get(openid)
        if user is None or openid in self.unsubscribed:
            return _ok(errcode=None, subscribe=0, openid=openid)
        info: dict[str, Any] = {"subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": 1,
                                "remark": "", "groupid": 0, "tagid_list": [], "subscribe_scene": "ADD_SCENE_SEARCH"}
        if user.unionid:
            info["unionid"] = user.unionid
        return _ok(errcode=None, **info)

    # -- messages ---------------------------------------------------------------------

    async def _custom_send(self, request: web.Request) -> web.Response:
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        raw = await request.read()
        if not raw.strip():
            return _err(44002)
        body = _loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("touser"), str):
            return _err(47001)
        appid = self._app_of(request)
        if code := self._custom_shape_error(body, appid):
            return _err(code)
        openid = body["touser"]
        if self.openid_apps.get(openid, appid) != appid:
            return _err(40003)
        if openid in self.unsubscribed or openid in self.outside_48h:
            return _err(45015)
        if self.kefu_quota is not None and self._kefu_count[openid] >= self.kefu_quota:
            return _err(45047)
        self._kefu_count[openid] += 1
        self.delivered.append(body)
        self.delivered_via.append((appid, openid))
        return _ok()

    def _custom_shape_error(self, body: dict[str, Any], app: str) -> int:
        msgtype = body.get("msgtype")
        payload = body.get(msgtype) if isinstance(msgtype, str) else None
        if msgtype not in ("text", "news", "image"):
            return 40008
        if not isinstance(payload, dict):
            return 47001
        if msgtype == "text":
            content = payload.get("content")
            return 0 if isinstance(content, str) and content else 47001
        if msgtype == "image":
            media_id = payload.get("media_id")
            return 0 if isinstance(media_id, str) and media_id in self.media and self.media_apps.get(
                media_id, app) == app else 40007
        articles = payload.get("articles")
        if not isinstance(articles, list) or not articles:
            return 47001
        if len(articles) > 1:
            return 45008  # since 2018-10 customer-service news carries one article
        fields = ("title", "description", "url", "picurl")
        ok = all(isinstance(a, dict) and all(isinstance(a.get(k, ""), str) for k in fields)
                 and a.get("title") for a in articles)
        return 0 if ok else 47001

    async def _template_send(self, request: web.Request) -> web.Response:
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("touser"), str):
            return _err(47001)
        template_id = body.get("template_id")
        if not isinstance(template_id, str) or not template_id or (
                self.template_ids is not None and template_id not in self.template_ids):
            return _err(40037)
        data = body.get("data")
        if not isinstance(data, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()):
            return _err(47001)
        if body["touser"] in self.unsubscribed:
            return _err(43004)
        msgid = next(self._msgid)
        self.templates_sent.append({**body, "msgid": msgid})
        return _ok(msgid=msgid)

    async def _subscribe_send(self, request: web.Request) -> web.Response:
        """订阅通知: a consent left for (openid, template) is spent; none: 43101; a `thing`
        value over 20 characters: 47003."""
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("touser"), str):
            return _err(40003)
        template_id, data = body.get("template_id"), body.get("data")
        if not isinstance(template_id, str) or not template_id:
            return _err(40037)
        if not isinstance(data, dict) or not data or not all(
                isinstance(v, dict) and isinstance(v.get("value"), str) and v["value"]
                and (not k.startswith("thing") or len(v["value"]) <= 20) for k, v in data.items()):
            return _err(47003)
        appid = self._tokens[request.query.get("access_token") or ""].appid
        if self.openid_apps.get(body["touser"], appid) != appid:
            return _err(40003)
        key = (body["touser"], template_id)
        if self.subscribe_consents.get(key, 0) <= 0:
            return _err(43101)
        self.subscribe_consents[key] -= 1
        self.subscribes_sent.append(body)
        return _ok()

    # -- mass sends (群发) -------------------------------------------------------------
    # mass/send: {"touser": [openid, …] (2..10000), "msgtype": "text"|"mpnews", "text": {"content"} |
    # "mpnews": {"media_id"}, "clientmsgid"?}; mass/sendall: {"filter": {"is_to_all", "tag_id"}, …};
    # both → {"errcode":0,"errmsg":"send job submission success","msg_id","msg_data_id"}; sendall to a
    # tag the account hasn't → 45159 (unc: the code). A
    # clientmsgid seen before → 45065 (WeChat keeps them 24 h). mass/preview: {"touser": openid, …}.

    def _mass_shape_error(self, body: dict[str, Any], app: str) -> int:
        msgtype = body.get("msgtype")
        payload = body.get(msgtype) if isinstance(msgtype, str) else None
        if msgtype not in ("text", "mpnews") or not isinstance(payload, dict):
            return 40008 if msgtype not in ("text", "mpnews") else 47001
        if msgtype == "text":
            content = payload.get("content")
            return 0 if isinstance(content, str) and content else 47001
        media_id = payload.get("media_id")
        return 0 if media_id in self.drafts and self.draft_apps.get(media_id, app) == app else 40007  # its own draft

    async def _mass_send(self, request: web.Request) -> web.Response:
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return _err(47001)
        if request.path.endswith("/sendall"):
            flt = body.get("filter")
            if not isinstance(flt, dict) or not (flt.get("is_to_all") is True or isinstance(flt.get("tag_id"), int)):
                return _err(47001)
            if flt.get("is_to_all") is not True:
                _code, app = self._tags_app(request)
                if flt["tag_id"] not in self.user_tags[app]:   # no such tag on this account (unc: code)
                    return _err(45159)
        else:
            touser = body.get("touser")
            if not isinstance(touser, list) or not all(isinstance(o, str) and o for o in touser):
                return _err(47001)
            if not 2 <= len(set(touser)) <= 10_000:
                return _err(40130)
            app = self._app_of(request)
            if any(self.openid_apps.get(o, app) != app for o in touser):   # another account's follower
                return _err(40003)
        if code := self._mass_shape_error(body, self._app_of(request)):
            return _err(code)
        client_id = body.get("clientmsgid")
        if client_id is not None and any(m.get("clientmsgid") == client_id for m in self.mass_sent):
            return _err(45065)
        msg_id = next(self._msgid)
        self.mass_sent.append({**body, "msg_id": msg_id})
        self.mass_apps[msg_id] = self._app_of(request)
        return web.json_response({"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id,
                                  "msg_data_id": msg_id + 7}, dumps=_dumps)

    async def _mass_preview(self, request: web.Request) -> web.Response:
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("touser"), str) or not body["touser"]:
            return _err(47001)
        if code := self._mass_shape_error(body, self._app_of(request)):
            return _err(code)
        if body["touser"] in self.unsubscribed:
            return _err(43004)
        if self.openid_apps.get(body["touser"], self._app_of(request)) != self._app_of(request):
            return _err(40003)
        self.mass_previews.append(body)
        return web.json_response({"errcode": 0, "errmsg": "preview success", "msg_id": next(self._msgid)},
                                 dumps=_dumps)

    # -- QR codes and media -----------------------------------------------------------

    async def _qrcode_create(self, request: web.Request) -> web.Response:
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return _err(47001)
        parsed = _parse_qr(body)
        if parsed is None:
            return _err(40097)
        scene, expire = parsed
        ticket = "gQ" + secrets.token_urlsafe(40)
        self.qr_scenes[ticket] = scene
        self.qr_apps[ticket] = self._app_of(request)
        url = self.qr_urls[ticket] = "http://weixin.qq.com/q/" + secrets.token_urlsafe(16)
        if expire is None:
            return _ok(ticket=ticket, url=url, errcode=None)
        return _ok(ticket=ticket, expire_seconds=expire, url=url, errcode=None)

    async def _image_part(self, request: web.Request, exts: Collection[str], most: int) -> bytes | web.Response:
        """The `media` image of a `type=image` multipart upload, or WeChat's error for it."""
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        if request.query.get("type") != "image":
            return _err(40004 if request.query.get("type") else 41005)
        if request.content_type != "multipart/form-data":
            return _err(41005)
        form = await request.post()
        media = form.get("media")
        if not isinstance(media, web.FileField):
            return _err(41005)
        if (media.filename or "").rsplit(".", 1)[-1].lower() not in exts:
            return _err(40005)
        data = media.file.read()
        if not data or len(data) > most:
            return _err(40009)
        return data

    async def _media_upload(self, request: web.Request) -> web.Response:
        data = await self._image_part(request, IMAGE_EXTS, IMAGE_MAX_BYTES)
        if isinstance(data, web.Response):
            return data
        media_id = secrets.token_urlsafe(48)
        self.media[media_id] = data
        self.media_apps[media_id] = self._app_of(request)
        return _ok(type="image", media_id=media_id, created_at=int(time.time()), errcode=None)

    async def _material_add(self, request: web.Request) -> web.Response:
        """A permanent image (`type=image`: bmp/png/jpeg/jpg/gif up to 10 MB): media_id and its URL."""
        data = await self._image_part(request, ("bmp", "png", "jpeg", "jpg", "gif"), 10 * 1024 * 1024)
        if isinstance(data, web.Response):
            return data
        media_id = secrets.token_urlsafe(32)
        self.materials[media_id] = data
        self.media_apps[media_id] = self._app_of(request)
        return _ok(media_id=media_id, url=f"http://mmbiz.qpic.cn/fake/{media_id[:12]}/0", errcode=None)

    async def _draft_add(self, request: web.Request) -> web.Response:
        """A draft of 1–8 articles, each with a title, a content and a permanent image as its
        cover (`thumb_media_id`, else 40007): its media_id, which mass/send takes as mpnews."""
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        body = await self._json_body(request)
        articles = body.get("articles") if isinstance(body, dict) else None
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8 or not all(isinstance(a, dict) for a in articles):
            return _err(44003)                                              # empty news data
        for a in articles:
            if not isinstance(a.get("title"), str) or not a["title"]:
                return _err(44003)
            if not isinstance(a.get("content"), str) or not a["content"]:
                return _err(44004)                                          # empty content
            thumb = a.get("thumb_media_id")
            if thumb not in self.materials or self.media_apps.get(thumb) != self._app_of(request):
                return _err(40007)                                          # invalid media_id (or another account's)
        media_id = secrets.token_urlsafe(32)
        self.drafts[media_id] = articles
        self.draft_apps[media_id] = self._app_of(request)
        return _ok(media_id=media_id, errcode=None)

    async def _media_get(self, request: web.Request) -> web.Response:
        """A temporary media's bytes (an image a member sent: tests put it in `media` under
        the MediaId the simulator sends), or {"errcode": 40007} for an unknown id."""
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        media_id = request.query.get("media_id", "")
        data = self.media.get(media_id)
        if data is None or self.media_apps.get(media_id, self._app_of(request)) != self._app_of(request):
            return _err(40007)
        return web.Response(body=data, content_type="image/jpeg")

    # -- JS-SDK -------------------------------------------------------------------------

    async def _getticket(self, request: web.Request) -> web.Response:
        if code := self._check_token(request.query.get("access_token"), ("basic", "stable")):
            return _err(code)
        kind = request.query.get("type", "")
        if kind not in ("jsapi", "wx_card"):
            return _err(40097)
        now = self.clock()
        live = [t for t in self._tickets if t.kind == kind and t.expires_at > now]
        current = live[-1] if live else None
        if current is None or current.expires_at - now <= 300:
            current = _Ticket(secrets.token_urlsafe(60), kind, now + self.token_ttl)
            self._tickets.append(current)
        return _ok(ticket=current.value, expires_in=max(int(current.expires_at - now), 0))

    async def _cors(self, request: web.Request) -> web.Response:
        return web.Response(headers={"Access-Control-Allow-Origin": "*",
                                     "Access-Control-Allow-Headers": "Content-Type",
                                     "Access-Control-Allow-Methods": "POST"})

    async def _jsconfig(self, request: web.Request) -> web.Response:
        """A test browser's stubbed `wx.config` asks here whether WeChat would accept it."""
        body = await self._json_body(request)
        cors = {"Access-Control-Allow-Origin": "*"}
        if not isinstance(body, dict):
            return web.json_response({"errMsg": "config:fail"}, headers=cors)
        ok = self.js_config_ok(app_id=str(body.get("appId", "")), timestamp=str(body.get("timestamp", "")),
                               nonce=str(body.get("nonceStr", "")), signature=str(body.get("signature", "")),
                               url=str(body.get("url", "")))
        return web.json_response({"errMsg": "config:ok" if ok else "config:invalid signature"}, headers=cors)

    # -- web OAuth ----------------------------------------------------------------------

    async def _sns_token(self, request: web.Request) -> web.Response:
        q = request.query
        if code := self._credentials_error(q.get("appid"), q.get("secret")):
            return _err(code)
        if q.get("grant_type") != "authorization_code":
            return _err(40002)
        entry = self._codes.get(q.get("code", ""))
        if entry is None:
            return _err(40029)
        if entry.used:
            return _err(40163)
        entry.used = True
        tok = self._issue("sns", openid=entry.openid, scope=entry.scope)
        answer: dict[str, Any] = {
            "access_token": tok.value, "expires_in": self.token_ttl,
            "refresh_token": secrets.token_urlsafe(48), "openid": entry.openid,
            "scope": entry.scope,
        }
        user = self.users.get(entry.openid)
        if user and user.unionid and entry.scope == "snsapi_userinfo":
            answer["unionid"] = user.unionid
        return web.json_response(answer, dumps=_dumps)

    async def _jscode2session(self, request: web.Request) -> web.Response:
        """GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code."""
        q = request.query
        apps = {self.mini_app_id: self.mini_app_secret, **self.mini_apps}   # every mini-program: app id → secret
        appid = q.get("appid", "")
        if appid not in apps:
            return _err(40013)
        if q.get("secret") != apps[appid]:
            return _err(40125)
        if q.get("grant_type") != "authorization_code":
            return _err(40002)
        code = q.get("js_code", "")
        entry = self._js_codes.get(code) or self._codes.get(code)
        if entry is None:
            return _err(40029)
        if entry.used:
            return _err(40163)
        entry.used = True
        answer: dict[str, Any] = {"openid": entry.openid, "session_key": secrets.token_urlsafe(16)}
        self.session_keys.append(answer["session_key"])
        user = self.users.get(entry.openid)
        if user and user.unionid:
            answer["unionid"] = user.unionid
        return web.json_response(answer, dumps=_dumps)

    async def _sns_userinfo(self, request: web.Request) -> web.Response:
        value, openid = request.query.get("access_token"), request.query.get("openid")
        if code := self._check_token(value, ("sns",)):
            return _err(code)
        tok = self._tokens[value or ""]
        if openid != tok.openid:
            return _err(40003)
        if tok.scope != "snsapi_userinfo":
            return _err(48001)
        user = self.users.get(tok.openid) or FakeUser(tok.openid)
        info: dict[str, Any] = {
            "openid": user.openid, "nickname": user.nickname, "sex": 0, "province": "",
            "city": "", "country": "", "headimgurl": user.headimgurl, "privilege": [],
        }
        if user.unionid:
            info["unionid"] = user.unionid
        return web.json_response(info, dumps=_dumps)


_MENU_NEEDS = {"click": ("key",), "view": ("url",), "miniprogram": ("appid", "pagepath", "url"),
               "scancode_push": ("key",), "scancode_waitmsg": ("key",), "pic_sysphoto": ("key",),
               "pic_photo_or_album": ("key",), "pic_weixin": ("key",), "location_select": ("key",),
               "media_id": ("media_id",), "article_id": ("article_id",), "view_limited": ("media_id",)}


def _menu_error(buttons: list[Any]) -> int:
    """WeChat's errcode for a menu it refuses, 0 when it takes it."""
    if not 1 <= len(buttons) <= 3:
        return 40016  # invalid button size
    for top in buttons:
        if not isinstance(top, dict):
            return 47001
        name = top.get("name")
        if not isinstance(name, str) or not name or len(name.encode()) > 16:
            return 40018  # invalid button name size
        if "sub_button" in top and top["sub_button"]:
            subs = top["sub_button"]
            if not isinstance(subs, list) or len(subs) > 5:
                return 40023  # invalid sub button size
            for sub in subs:
                if not isinstance(sub, dict):
                    return 47001
                sname = sub.get("name")
                if not isinstance(sname, str) or not sname or len(sname.encode()) > 60:
                    return 40025  # invalid sub button name size
                if code := _button_error(sub, sub=True):
                    return code
        elif code := _button_error(top, sub=False):
            return code
    return 0


def _button_error(b: dict[str, Any], *, sub: bool) -> int:
    needs = _MENU_NEEDS.get(b.get("type", ""))
    if needs is None:
        return 40024 if sub else 40017  # invalid (sub) button type
    for field_name in needs:
        if not isinstance(b.get(field_name), str) or not b[field_name]:
            return 47001
    if "key" in needs and len(b["key"].encode()) > 128:
        return 40026 if sub else 40019  # invalid (sub) button key size
    if "url" in needs and len(b["url"].encode()) > 1024:
        return 40027 if sub else 40020  # invalid (sub) button url size
    return 0


def _parse_qr(body: dict[str, Any]) -> tuple[str | int, int | None] | None:
    """(scene, expire_seconds or None for permanent), or None when WeChat would refuse."""
    action = body.get("action_name")
    info = body.get("action_info")
    scene = info.get("scene") if isinstance(info, dict) else None
    if not isinstance(scene, dict):
        return None
    temporary = action in ("QR_SCENE", "QR_STR_SCENE")
    expire: int | None = None
    if temporary:
        raw = body.get("expire_seconds", QR_TEMP_DEFAULT)
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= QR_TEMP_MAX:
            return None
        expire = raw
    if action in ("QR_SCENE", "QR_LIMIT_SCENE"):
        sid = scene.get("scene_id")
        top = 2**32 - 1 if temporary else 100_000
        if isinstance(sid, bool) or not isinstance(sid, int) or not 1 <= sid <= top:
            return None
        return sid, expire
    if action in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE"):
        sstr = scene.get("scene_str")
        if not isinstance(sstr, str) or not 1 <= len(sstr) <= 64:
            return None
        return sstr, expire
    return None


def _loads(raw: bytes) -> Any:
    """Parse like WeChat: UTF-8 JSON where a \\uXXXX escape stays literal text."""
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
        return json.loads(_ESCAPE.sub(lambda m: m.group(1) + "\\\\u", text))
    except (UnicodeDecodeError, ValueError):
        return None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _ok(errcode: int | None = 0, **fields: Any) -> web.Response:
    body = {"errcode": 0, "errmsg": "ok", **fields} if errcode is not None else fields
    return web.json_response(body, dumps=_dumps)


def _err(errcode: int) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")},
                             dumps=_dumps)
