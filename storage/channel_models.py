"""Channel accounts (core): the entrances a tenant owns — official accounts (service or
subscription), mini-programs, WeCom apps and group robots — each with its own
credentials, and the pay merchant its orders are paid through.

A tenant's first official account was once columns of `tenants`; migration ch25_0001
copied it into a row here (`is_primary`, code "main"), and saving either keeps both equal.
Secrets are stored like `tenants.wechat_app_secret` (the console never shows them back).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class ChannelAccount(Base):
    __tablename__ = "channel_accounts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))            # mp | mini | wecom_app | wecom_bot
    subtype: Mapped[str] = mapped_column(String(16), default="")  # mp: service | subscription
    code: Mapped[str] = mapped_column(String(32))            # in the URL: /wechat/mp/{tenant}/{code}
    name: Mapped[str] = mapped_column(String(64), default="")
    app_id: Mapped[str] = mapped_column(String(64), default="")     # WeCom: the corp id
    app_secret: Mapped[str] = mapped_column(String(128), default="")
    token: Mapped[str] = mapped_column(String(64), default="")
    aes_key: Mapped[str] = mapped_column(String(64), default="")
    agent_id: Mapped[str] = mapped_column(String(32), default="")   # WeCom app
    webhook_key: Mapped[str] = mapped_column(String(128), default="")  # WeCom group robot
    pay_account_id: Mapped[int | None] = mapped_column(BigInteger, default=None)  # None: the default merchant
    menu: Mapped[str] = mapped_column(Text, default="")        # the official account's menu (JSON)
    menu_published_at: Mapped[datetime | None] = mapped_column(default=None)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        Index("ix_channel_accounts_app_id", "app_id"),
    )
