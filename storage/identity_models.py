"""Identity-linking tables (core): one-time links that attach a second channel identity
to a member (e.g. a WeCom group member without a unionid → their official-account openid).

Only a SHA-256 of the link's secret is stored, so a copy of the database can't be used
to open live links. A link is spent by one conditional UPDATE (`used_at IS NULL AND
expires_at > now`), in the same transaction as the linking it does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class MemberLinkToken(Base):
    __tablename__ = "member_link_tokens"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))   # who it was issued to
    channel: Mapped[str] = mapped_column(String(16))                     # the identity it links from
    external_id: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(40), default="")         # e.g. "wecom_group"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    used_by_channel: Mapped[str] = mapped_column(String(16), default="")
    result: Mapped[str] = mapped_column(String(16), default="")         # linked | merged | already
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        Index("ix_member_link_tokens_identity", "tenant_id", "channel", "external_id"),
    )
