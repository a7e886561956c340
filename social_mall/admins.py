"""Console administrators: argon2 password hashes (argon2-cffi), roles."""

from __future__ import annotations

from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from storage.models import Admin
from storage.uow import UnitOfWork

_hasher = PasswordHasher()


class Role(StrEnum):
    SUPER = "super"
    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    SERVICE = "service"
    FINANCE = "finance"


class WeakPasswordError(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise WeakPasswordError("at least 10 characters")
    return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except VerificationError:
        return False


async def create_admin(
    uow: UnitOfWork, *, username: str, password: str, role: Role, tenant_id: int | None,
    actor: str = "cli",
) -> int:
    admin = Admin(tenant_id=tenant_id, username=username, password_hash=hash_password(password), role=role)
    uow.session.add(admin)
    await uow.session.flush()
    uow.audit(tenant_id or 0, actor, "admin.create", f"admin:{admin.id}", after={"username": username, "role": role})
    return admin.id
