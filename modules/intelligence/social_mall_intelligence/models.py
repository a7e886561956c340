"""The module's tables (on the core's Base): the merchant's search synonyms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class Synonym(Base):
    """「搜 word 也找 alternatives」: one way, per tenant."""

    __tablename__ = "intel_synonyms"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    word: Mapped[str] = mapped_column(String(20))
    alternatives: Mapped[str] = mapped_column(String(200))   # words separated by one space
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "word"),)
