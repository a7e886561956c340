"""Reviews (评价) over the caller's unit of work: what a member may review (products of
their completed orders, once per order and product), writing one (the text's sensitive
words masked), the card's summary, and the console's moderation (reply, hide with a
reason, show again; audited)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from social_mall.errors import NotFoundError
from social_mall.orders.service import list_orders, load_order
from social_mall.views import Page
from social_mall_after_sale import rules_reviews as R
from social_mall_after_sale.errors import AfterSaleRefusedError
from social_mall_after_sale.events import ReviewPhotosSent
from social_mall_after_sale.models import Review, ReviewPhoto, SensitiveWord
from storage.uow import UnitOfWork

PER_PAGE = 20


@dataclass(frozen=True)
class Reviewable:
    order_id: int
    order_no: str
    product_id: int
    title: str


@dataclass(frozen=True)
class ReviewView:
    id: int
    order_id: int
    member_id: int
    product_id: int
    title: str
    stars: int
    text: str
    hidden: bool
    hidden_reason: str
    reply: str
    created_at: datetime
    photo_ids: tuple[int, ...] = ()

    @property
    def stars_text(self) -> str:
        return R.stars_text(self.stars)


def _view(r: Review, photos: Sequence[int] = ()) -> ReviewView:
    return ReviewView(r.id, r.order_id, r.member_id, r.product_id, r.title, r.stars, r.text, r.hidden,
                      r.hidden_reason, r.reply, r.created_at, tuple(photos))


async def reviewable(uow: UnitOfWork, tenant: int, member_id: int, *, limit: int = 9) -> list[Reviewable]:
    """Products of the member's completed orders not reviewed yet (newest orders first)."""
    found = await list_orders(uow, tenant, member_id, page=1, per_page=30)
    done = {(o, p) for o, p in (await uow.session.execute(
        select(Review.order_id, Review.product_id).where(Review.tenant_id == tenant,
                                                         Review.member_id == member_id))).all()}
    out: list[Reviewable] = []
    for o in found.items:
        if o.status != "completed":
            continue
        products = {s.id: p for s, p in await uow.catalog.skus_by_ids(tenant, [ln.sku_id for ln in o.lines])}
        seen: set[int] = set()
        for ln in o.lines:
            p = products.get(ln.sku_id)
            if p is None or p.id in seen or (o.id, p.id) in done:
                continue
            seen.add(p.id)
            out.append(Reviewable(o.id, o.order_no, p.id, p.title))
    return out[:limit]


async def sensitive_words(uow: UnitOfWork, tenant: int) -> list[str]:
    return list((await uow.session.scalars(select(SensitiveWord.word).where(SensitiveWord.tenant_id == tenant)
                                           .order_by(SensitiveWord.id))).all())


async def save_words(uow: UnitOfWork, tenant: int, raw: str, *, actor: str) -> list[str]:
    words = R.clean_words(raw)
    if len(words) > R.MAX_WORDS or any(len(w) > R.MAX_WORD for w in words):
        raise AfterSaleRefusedError("words")
    before = await sensitive_words(uow, tenant)
    await uow.session.execute(delete(SensitiveWord).where(SensitiveWord.tenant_id == tenant))
    for w in words:
        uow.session.add(SensitiveWord(tenant_id=tenant, word=w))
    await uow.session.flush()
    uow.audit(tenant, actor, "review.words", "reviews:words", before={"count": len(before)},
              after={"count": len(words)})
    return words


async def write_review(uow: UnitOfWork, tenant: int, member_id: int, order_id: int, product_id: int, *,
                       stars: int, text: str, photos: Sequence[str] = (), now: datetime,
                       account: int = 0) -> ReviewView:
    """The member's review of a product of their completed order (once: a second is
    refused). The text's sensitive words are masked before it is stored."""
    if not R.stars_ok(stars):
        raise AfterSaleRefusedError("stars")
    if len(text) > R.MAX_TEXT:
        raise AfterSaleRefusedError("review_text")
    if len(photos) > R.MAX_PHOTOS:
        raise AfterSaleRefusedError("photos")
    order = await load_order(uow, tenant, order_id)
    if order.member_id != member_id:
        raise NotFoundError("order", order_id)
    if order.status != "completed":
        raise AfterSaleRefusedError("review_order")
    item = next((r for r in await reviewable(uow, tenant, member_id, limit=10_000)
                 if r.order_id == order_id and r.product_id == product_id), None)
    if item is None:
        raise AfterSaleRefusedError("reviewed")
    row = Review(tenant_id=tenant, order_id=order_id, member_id=member_id, product_id=product_id,
                 title=item.title[:120], stars=stars, text=R.mask(text.strip(), await sensitive_words(uow, tenant)),
                 hidden=False, hidden_reason="", reply="", created_at=now)
    try:
        async with uow.session.begin_nested():
            uow.session.add(row)
    except IntegrityError:
        raise AfterSaleRefusedError("reviewed") from None
    for m in photos:
        uow.session.add(ReviewPhoto(tenant_id=tenant, review_id=row.id, media_id=m[:128], content_type=""))
    await uow.session.flush()
    if photos:
        uow.emit(ReviewPhotosSent(tenant_id=tenant, review_id=row.id, account_id=account))
    return _view(row)


async def card_note_data(uow: UnitOfWork, tenant: int, product_id: int) -> tuple[int, int, list[ReviewView]]:
    """(average × 10, count, the latest 3) of the product's visible reviews."""
    stars = (await uow.session.execute(
        select(func.count(), func.coalesce(func.sum(Review.stars), 0)).where(
            Review.tenant_id == tenant, Review.product_id == product_id, Review.hidden.is_(False)))).one()
    count, total = int(stars[0]), int(stars[1])
    if not count:
        return 0, 0, []
    latest = (await uow.session.scalars(select(Review).where(
        Review.tenant_id == tenant, Review.product_id == product_id, Review.hidden.is_(False))
        .order_by(Review.id.desc()).limit(3))).all()
    return R.avg_tenths(total, count), count, [_view(r) for r in latest]


async def list_reviews(uow: UnitOfWork, tenant: int, *, hidden: str = "", page: int = 1) -> Page[ReviewView]:
    page = max(1, page)
    q = select(Review).where(Review.tenant_id == tenant)
    if hidden in ("0", "1"):
        q = q.where(Review.hidden.is_(hidden == "1"))
    total = await uow.session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = (await uow.session.scalars(q.order_by(Review.id.desc()).offset((page - 1) * PER_PAGE)
                                      .limit(PER_PAGE))).all()
    photos: dict[int, list[int]] = {r.id: [] for r in rows}
    if rows:
        for pid, rid in (await uow.session.execute(select(ReviewPhoto.id, ReviewPhoto.review_id).where(
                ReviewPhoto.review_id.in_(list(photos))).order_by(ReviewPhoto.id))).all():
            photos[rid].append(pid)
    return Page(tuple(_view(r, photos[r.id]) for r in rows), total, page, PER_PAGE)


async def _row(uow: UnitOfWork, tenant: int, review_id: int) -> Review:
    row = await uow.session.scalar(select(Review).where(Review.tenant_id == tenant, Review.id == review_id))
    if row is None:
        raise NotFoundError("review", review_id)
    return row


async def reply(uow: UnitOfWork, tenant: int, review_id: int, text: str, *, actor: str, now: datetime) -> None:
    body = " ".join(text.split())
    if not (1 <= len(body) <= 300):
        raise AfterSaleRefusedError("reply")
    row = await _row(uow, tenant, review_id)
    before = row.reply
    row.reply, row.replied_at = body, now
    await uow.session.flush()
    uow.audit(tenant, actor, "review.reply", f"review:{review_id}", before={"reply": before}, after={"reply": body})


async def set_hidden(uow: UnitOfWork, tenant: int, review_id: int, hidden: bool, *, reason: str, actor: str) -> None:
    """Hide a review (a reason required) or show it again; audited either way."""
    why = " ".join(reason.split())
    if hidden and not (2 <= len(why) <= 80):
        raise AfterSaleRefusedError("hide_reason")
    row = await _row(uow, tenant, review_id)
    res = await uow.session.execute(update(Review).where(Review.id == row.id, Review.hidden.is_(not hidden))
                                    .values(hidden=hidden, hidden_reason=why if hidden else "")
                                    .execution_options(synchronize_session=False))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise AfterSaleRefusedError("state", status="已隐藏" if hidden else "已显示")
    uow.audit(tenant, actor, "review.hide" if hidden else "review.show", f"review:{review_id}",
              before={"hidden": not hidden}, after={"hidden": hidden, "reason": why})


async def review_photos_to_fetch(uow: UnitOfWork, tenant: int, review_id: int) -> list[tuple[int, str]]:
    return [(p.id, p.media_id) for p in (await uow.session.scalars(select(ReviewPhoto).where(
        ReviewPhoto.tenant_id == tenant, ReviewPhoto.review_id == review_id, ReviewPhoto.data.is_(None)))).all()]


async def keep_review_photo(uow: UnitOfWork, tenant: int, photo_id: int, data: bytes, content_type: str, *,
                            now: datetime) -> None:
    await uow.session.execute(update(ReviewPhoto).where(ReviewPhoto.tenant_id == tenant, ReviewPhoto.id == photo_id,
                                                        ReviewPhoto.data.is_(None))
                              .values(data=data, content_type=content_type[:40], fetched_at=now)
                              .execution_options(synchronize_session=False))


async def review_photo(uow: UnitOfWork, tenant: int, photo_id: int) -> tuple[bytes, str]:
    row = await uow.session.scalar(select(ReviewPhoto).where(ReviewPhoto.tenant_id == tenant,
                                                             ReviewPhoto.id == photo_id))
    if row is None or row.data is None:
        raise NotFoundError("photo", photo_id)
    return row.data, row.content_type or "image/jpeg"
