"""Logging in: argon2 passwords, a rate limit per client address and per username (KV
counters, shared by every worker), and a lockout after repeated failures (on the admin
row, so it survives restarts). Plus per-admin API tokens, stored only as SHA-256.

Revocation: a password reset, a role change or disabling an admin moves the admin's
credentials version on (sessions carry the version they were opened with, so every one of
them ends, on every worker) and revokes all their API tokens. Tokens are revoked on a role
change too, rather than acting with the new role: a token is a credential handed to a
script for the job the admin had; a promotion would otherwise silently widen every token
already out there (an operator's CI token gaining refunds and admin management), and a
demotion is usually a loss of trust, like a reset. Issuing a new one is one click."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher

from social_mall.admins import Role, check_password, hash_password
from social_mall.console.errors import ConflictError, CredentialsChangedError, InvalidInputError
from social_mall.console import rules
from social_mall.errors import NotFoundError
from storage.console_models import ApiToken
from storage.console_repos import ConsoleRepo
from social_mall.kv import KVStore
from storage.models import Admin
from storage.uow import UnitOfWork

MAX_FAILURES = 5                      # consecutive failures before the account locks
LOCK_FOR = timedelta(minutes=15)
RATE_WINDOW_SECONDS = 600.0
MAX_TRIES_PER_ADDRESS = 30            # login attempts per client address per window
MAX_TRIES_PER_USERNAME = 10           # per username per window (spread-out guessing)
TOKEN_PREFIX = "smk_"
_DUMMY_HASH = PasswordHasher().hash("not-a-real-password-0")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class AdminView:
    id: int
    tenant_id: int | None
    username: str
    role: str
    locked_until: datetime | None = None
    cred_version: int = 0
    disabled_at: datetime | None = None

    @property
    def actor(self) -> str:
        return f"admin:{self.id}:{self.username}"

    @property
    def is_super(self) -> bool:
        return self.role == Role.SUPER


def admin_view(a: Admin) -> AdminView:
    return AdminView(a.id, a.tenant_id, a.username, a.role, a.locked_until, a.cred_version, a.disabled_at)


@dataclass(frozen=True)
class LoginResult:
    admin: AdminView | None
    error: str = ""   # "" | bad_credentials | locked | rate_limited | disabled


async def login(
    uow: UnitOfWork, kv: KVStore, *, username: str, password: str, address: str, now: datetime
) -> LoginResult:
    """Check a password. The caller commits whatever the outcome (failure counters)."""
    name = username.strip()[:64]
    by_addr = await kv.incr(f"console:login:addr:{address}", RATE_WINDOW_SECONDS)
    by_name = await kv.incr(f"console:login:user:{hashlib.sha256(name.lower().encode()).hexdigest()[:32]}",
                            RATE_WINDOW_SECONDS)
    if by_addr > MAX_TRIES_PER_ADDRESS or by_name > MAX_TRIES_PER_USERNAME:
        return LoginResult(None, "rate_limited")
    repo = ConsoleRepo(uow.session)
    admin = await repo.admin_by_username(name) if name else None
    if admin is None:
        check_password(_DUMMY_HASH, password)  # the same work as a real check: no timing hint
        return LoginResult(None, "bad_credentials")
    if admin.locked_until is not None and admin.locked_until > now:
        return LoginResult(None, "locked")
    if not check_password(admin.password_hash, password):
        failures = await repo.record_failure(admin.id)
        if failures >= MAX_FAILURES:
            await repo.lock(admin.id, now + LOCK_FOR)
            uow.audit(admin.tenant_id or 0, f"admin:{admin.id}:{admin.username}", "admin.locked",
                      f"admin:{admin.id}", after={"failures": failures, "until": (now + LOCK_FOR).isoformat()})
        return LoginResult(None, "bad_credentials")
    if admin.disabled_at is not None:  # told only to someone who knows the password
        uow.audit(admin.tenant_id or 0, f"admin:{admin.id}:{admin.username}", "admin.login_refused",
                  f"admin:{admin.id}", after={"reason": "disabled"})
        return LoginResult(None, "disabled")
    await repo.clear_failures(admin.id)
    if _hasher.check_needs_rehash(admin.password_hash):
        await repo.set_password_hash(admin.id, hash_password(password))
    view = admin_view(admin)
    uow.audit(admin.tenant_id or 0, view.actor, "admin.login", f"admin:{admin.id}")
    return LoginResult(view, "")


async def current_admin(uow: UnitOfWork, admin_id: int) -> AdminView | None:
    """The admin as stored now (a changed role or a deleted account applies at once)."""
    admin = await ConsoleRepo(uow.session).admin(admin_id)
    return None if admin is None else admin_view(admin)


async def session_admin(uow: UnitOfWork, admin_id: int, cred_version: int) -> AdminView | None:
    """The admin of a console session, or None when the session has ended: the admin is
    gone or disabled, or their credentials changed since it was opened."""
    admin = await current_admin(uow, admin_id)
    if admin is None or admin.disabled_at is not None or admin.cred_version != cred_version:
        return None
    return admin


# -- API tokens --------------------------------------------------------------------------

def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None


async def issue_token(uow: UnitOfWork, admin: AdminView, name: str, now: datetime) -> tuple[str, TokenView]:
    """A new token for `admin`; the plain value is returned once and never stored."""
    label = rules.text(name, "name", max_len=40, min_len=1)
    repo = ConsoleRepo(uow.session)
    # `admin` is who the session says; the row lock orders this against a reset, role
    # change or disabling running at the same moment: before it, the token is revoked
    # with the rest; after it, the session's version is stale and nothing is issued.
    state = await repo.lock_credentials(admin.id)
    if state is None or state != (admin.cred_version, None):
        raise CredentialsChangedError(admin.id)
    if len(await repo.tokens_for(admin.id)) >= 10:
        raise ConflictError("token", "too_many")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = await repo.add_token(ApiToken(tenant_id=admin.tenant_id, admin_id=admin.id, name=label,
                                        token_hash=token_hash(plain), hint=plain[-4:], created_at=now))
    uow.audit(admin.tenant_id or 0, admin.actor, "token.issue", f"token:{row.id}", after={"name": label})
    return plain, TokenView(row.id, row.name, row.hint, row.created_at, None)


async def list_tokens(uow: UnitOfWork, admin: AdminView) -> list[TokenView]:
    return [TokenView(t.id, t.name, t.hint, t.created_at, t.last_used_at)
            for t in await ConsoleRepo(uow.session).tokens_for(admin.id)]


async def revoke_token(uow: UnitOfWork, admin: AdminView, token_id: int, now: datetime) -> None:
    if not await ConsoleRepo(uow.session).revoke_token(admin.id, token_id, now):
        raise NotFoundError("token", token_id)
    uow.audit(admin.tenant_id or 0, admin.actor, "token.revoke", f"token:{token_id}")


async def admin_for_token(uow: UnitOfWork, plain: str, now: datetime) -> AdminView | None:
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 100 or not plain.isascii():
        return None  # ours are ASCII; a header's odd bytes arrive as lone surrogates
    repo = ConsoleRepo(uow.session)
    row = await repo.token_by_hash(token_hash(plain))
    if row is None:
        return None
    admin = await repo.admin(row.admin_id)
    if admin is None or admin.tenant_id != row.tenant_id or admin.disabled_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        await repo.touch_token(row.id, now)  # coarse: at most one write per token per 5 min
    return admin_view(admin)


# -- admin users (owner) -----------------------------------------------------------------

async def list_admins(uow: UnitOfWork, tenant: int) -> list[AdminView]:
    return [admin_view(a) for a in await ConsoleRepo(uow.session).admins(tenant)]


async def add_admin(uow: UnitOfWork, tenant: int, actor: AdminView, *, username: str, password: str,
                    role: str) -> int:
    from social_mall.console.permissions import TENANT_ROLES

    name = rules.username(username)
    try:
        r = Role(role)
    except ValueError:
        raise InvalidInputError("role", "role") from None
    if r not in TENANT_ROLES:
        raise InvalidInputError("role", "role")
    return await new_admin(uow, username=name, password=password, role=r, tenant_id=tenant, actor=actor.actor)


async def new_admin(uow: UnitOfWork, *, username: str, password: str, role: Role, tenant_id: int | None,
                    actor: str) -> int:
    """A new administrator, checked: the username's format (InvalidInputError "username"),
    not taken (ConflictError "username"), a strong enough password (InvalidInputError
    "password"). The console, the CLI and the demo's first start create admins through it."""
    from social_mall.admins import WeakPasswordError, create_admin

    name = rules.username(username)
    if await ConsoleRepo(uow.session).admin_by_username(name) is not None:
        raise ConflictError("username", name)
    try:
        return await create_admin(uow, username=name, password=password, role=role, tenant_id=tenant_id,
                                  actor=actor)
    except WeakPasswordError:
        raise InvalidInputError("password", "weak_password") from None


async def _revoke(uow: UnitOfWork, tenant: int, admin_id: int, now: datetime, **values: object) -> dict[str, object]:
    """Apply `values` to the admin, end their sessions (the credentials version moves on,
    in the same UPDATE, which takes the row lock first) and revoke their API tokens. The
    facts for the audit entry."""
    repo = ConsoleRepo(uow.session)
    if not await repo.change_credentials(tenant, admin_id, **values):
        raise NotFoundError("admin", admin_id)
    revoked = await repo.revoke_tokens_of(admin_id, now)
    return {"sessions": "ended", "tokens_revoked": revoked}


async def change_role(uow: UnitOfWork, tenant: int, actor: AdminView, admin_id: int, role: str, *,
                      now: datetime) -> None:
    from social_mall.console.permissions import TENANT_ROLES

    repo = ConsoleRepo(uow.session)
    target = await repo.tenant_admin(tenant, admin_id)
    if target is None:
        raise NotFoundError("admin", admin_id)
    if target.id == actor.id:
        raise InvalidInputError("role", "own_role")
    if role not in {r.value for r in TENANT_ROLES}:
        raise InvalidInputError("role", "role")
    before = target.role
    if role == before:
        return  # nothing changes: sessions and tokens stay
    revoked = await _revoke(uow, tenant, admin_id, now, role=role)
    uow.audit(tenant, actor.actor, "admin.role", f"admin:{admin_id}", before={"role": before},
              after={"role": role, **revoked})


async def reset_password(uow: UnitOfWork, tenant: int, actor: AdminView, admin_id: int, password: str, *,
                         now: datetime) -> None:
    from social_mall.admins import WeakPasswordError

    repo = ConsoleRepo(uow.session)
    if await repo.tenant_admin(tenant, admin_id) is None:
        raise NotFoundError("admin", admin_id)
    try:
        hashed = hash_password(password)
    except WeakPasswordError:
        raise InvalidInputError("password", "weak_password") from None
    revoked = await _revoke(uow, tenant, admin_id, now, password_hash=hashed, failed_logins=0, locked_until=None)
    uow.audit(tenant, actor.actor, "admin.password_reset", f"admin:{admin_id}", after=revoked)


async def set_disabled(uow: UnitOfWork, tenant: int, actor: AdminView, admin_id: int, disabled: bool, *,
                       now: datetime) -> None:
    """Disable an admin (no login, sessions ended, tokens revoked) or enable them again
    (they log in afresh; what was revoked stays revoked)."""
    repo = ConsoleRepo(uow.session)
    target = await repo.tenant_admin(tenant, admin_id)
    if target is None:
        raise NotFoundError("admin", admin_id)
    if target.id == actor.id:
        raise InvalidInputError("admin", "own_account")
    if (target.disabled_at is not None) == disabled:
        return  # already so
    if disabled:
        revoked = await _revoke(uow, tenant, admin_id, now, disabled_at=now)
        uow.audit(tenant, actor.actor, "admin.disable", f"admin:{admin_id}", after=revoked)
    else:
        await repo.update_admin(tenant, admin_id, disabled_at=None, failed_logins=0, locked_until=None)
        uow.audit(tenant, actor.actor, "admin.enable", f"admin:{admin_id}")


async def first_admin(uow: UnitOfWork, tenant: int, *, username: str = "admin") -> tuple[str, str] | None:
    """When the tenant has no administrator yet: an owner with a random password, returned
    once as (username, password) for the caller to show (it is stored only hashed, and
    the audit log names the admin, never the password). None when the tenant has one."""
    repo = ConsoleRepo(uow.session)
    if await repo.admins(tenant):
        return None
    name = username if await repo.admin_by_username(username) is None else f"{username}_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    await new_admin(uow, username=name, password=password, role=Role.OWNER, tenant_id=tenant, actor="first_start")
    return name, password
