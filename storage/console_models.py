"""Console tables: per-admin API tokens (only a SHA-256 of each token is stored).

Sessions live in the key-value store (see social_mall/console/sessions.py), so they need
no table; lockout counters live on the core `admins` row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class ApiToken(Base):
    __tablename__ = "console_api_tokens"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # None only for the platform super-admin's tokens (like admins.tenant_id)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), default=None, index=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))  # last characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
