"""The module's tables (on the core's Base). Every row carries tenant_id; times UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class Article(Base):
    """An article (图文): title, digest, cover, a sanitised HTML body, linked product ids."""

    __tablename__ = "content_articles"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    title: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(120), default="")
    cover: Mapped[str] = mapped_column(String(512), default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    product_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_content_articles_latest", "tenant_id", "published", "id"),)


class Broadcast(Base):
    """A broadcast (群发): an article or a product (sent as a text with its link) or a text to a segment
    ("all", "level:<name>", "category:<id>") through the mass-send API. `key` is the console
    form's one-time key: a double click finds the row it made. status: scheduled → sending →
    sent (→ finished on MASSSENDJOBFINISH) or failed."""

    __tablename__ = "content_broadcasts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    key: Mapped[str] = mapped_column(String(40))
    article_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    product_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    segment: Mapped[str] = mapped_column(String(40), default="all")
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    scheduled_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)   # left out: their month's 4 used
    msg_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str] = mapped_column(String(200), default="")
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    result: Mapped[str] = mapped_column(String(64), default="")       # MASSSENDJOBFINISH Status
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("tenant_id", "key"),
                      Index("ix_content_broadcasts_due", "status", "scheduled_at"),
                      Index("ix_content_broadcasts_msg", "tenant_id", "msg_id"))


class BroadcastRecipient(Base):
    """Who a sent broadcast went to, and in which month (Asia/Shanghai, "2026-12"): a
    service account reaches a follower at most 4 times a month."""

    __tablename__ = "content_broadcast_recipients"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("content_broadcasts.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    month: Mapped[str] = mapped_column(String(7))
    account_id: Mapped[int] = mapped_column(BigInteger, default=0)   # the official account it went out from (0: primary)
    __table_args__ = (UniqueConstraint("broadcast_id", "member_id"),
                      Index("ix_content_recipients_quota", "tenant_id", "member_id", "month"))


class BroadcastSend(Base):
    """One official account's part of a broadcast (0: the primary): WeChat takes a mass send
    per account — its token, its followers' openids, its own clientmsgid, msg_id and
    MASSSENDJOBFINISH. status: sending → sent (→ finished) or failed (a part WeChat didn't
    answer stays sending and is tried again); a lone follower at an
    account (mass/send takes 2 at least) gets none and the account no row."""

    __tablename__ = "content_broadcast_sends"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("content_broadcasts.id"))
    account_id: Mapped[int] = mapped_column(BigInteger, default=0)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    client_msg_id: Mapped[str] = mapped_column(String(64))
    wechat_tag_id: Mapped[int] = mapped_column(BigInteger, default=0)   # a subscription account: sendall to it
    status: Mapped[str] = mapped_column(String(16), default="sending")
    msg_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str] = mapped_column(String(200), default="")
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    result: Mapped[str] = mapped_column(String(64), default="")
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # WeChat didn't answer (busy, unreachable, a 5xx): the part stays "sending" and is tried
    # again with its clientmsgid (sent once either way), `attempts` times in all so far,
    # never after WeChat forgets the clientmsgid (24 h after `first_tried_at`)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_tried_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("broadcast_id", "account_id"),
                      Index("ix_content_broadcast_sends_msg", "tenant_id", "msg_id"))


class Previewer(Base):
    """An admin's own openid for previews, bound by sending the console's code in chat."""

    __tablename__ = "content_previewers"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    admin_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    openid: Mapped[str] = mapped_column(String(128), default="")
    account_id: Mapped[int] = mapped_column(BigInteger, default=0)  # the official account `openid` is at (0: primary)
    code: Mapped[str] = mapped_column(String(16), default="")      # the live code's selector
    digest: Mapped[str] = mapped_column(String(64), default="")    # its SHA-256 ("": none)
    code_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (Index("ix_content_previewers_code", "tenant_id", "code"),)


class ArticleMedia(Base):
    """An article as uploaded to one official account for a 图文 (mpnews) broadcast: its cover
    as permanent material (`thumb_media_id`) and the draft holding it (`media_id`, what
    mass/send takes). Made again when the article changed since (`article_updated_at`)."""

    __tablename__ = "content_article_media"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    article_id: Mapped[int] = mapped_column(ForeignKey("content_articles.id"))
    app_id: Mapped[str] = mapped_column(String(64))
    thumb_media_id: Mapped[str] = mapped_column(String(128))
    media_id: Mapped[str] = mapped_column(String(128))
    article_updated_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "article_id", "app_id"),)
