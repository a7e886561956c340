"""Console side of membership (会员积分): the tenant's loyalty configuration as a form
(points earned and redeemed, expiry, sign-in, and what a refund gives back), checked field
by field, saved whole and audited (before and after)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace

from social_mall.console.auth import AdminView
from social_mall.console.errors import InvalidInputError
from social_mall.loyalty import rules
from social_mall.loyalty import service as loyalty
from social_mall.loyalty.rules import LoyaltyConfig
from storage.uow import UnitOfWork

FIELDS_ZH = {
    "earn_points_per_yuan": "每消费 1 元得积分", "growth_per_yuan": "每消费 1 元得成长值",
    "redeem_points_per_yuan": "多少积分抵 1 元", "redeem_cap_bp": "积分最多抵商品金额（万分比，5000 = 50%）",
    "points_valid_days": "积分有效期（天）", "signin_points": "每日签到积分", "streak_days": "连续签到天数",
    "streak_bonus": "连续签到奖励积分", "refund_points": "退款时抵扣积分", "refund_coupon": "退款时优惠券",
}


def parse_config(form: Mapping[str, str], current: LoyaltyConfig) -> LoyaltyConfig:
    """The configuration the form asks for: a blank number keeps its value; every other
    value must be a whole number within its bounds or one of the rule choices."""
    changes: dict[str, int | str] = {}
    for field, (low, high) in rules.CONFIG_BOUNDS.items():
        raw = (form.get(field) or "").strip()
        if not raw:
            continue
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 7):
            raise InvalidInputError(field, "integer")
        if not low <= int(raw) <= high:
            raise InvalidInputError(field, "range")
        changes[field] = int(raw)
    for field, choices in (("refund_points", rules.REFUND_POINTS_RULES), ("refund_coupon", rules.REFUND_COUPON_RULES)):
        raw = (form.get(field) or "").strip()
        if raw and raw not in choices:
            raise InvalidInputError(field, "range")
        if raw:
            changes[field] = raw
    return replace(current, **changes)  # type: ignore[arg-type]


async def update_config(uow: UnitOfWork, tenant: int, actor: AdminView, form: Mapping[str, str]) -> list[str]:
    """Save the form (nothing when it is refused: InvalidInputError). The fields changed."""
    before = await loyalty.config(uow, tenant)
    after = parse_config(form, before)
    changed = sorted(k for k, v in asdict(after).items() if asdict(before)[k] != v)
    if not changed:
        return []
    await loyalty.configure(uow, tenant, after)
    uow.audit(tenant, actor.actor, "loyalty.configure", f"tenant:{tenant}",
              before={k: asdict(before)[k] for k in changed}, after={k: asdict(after)[k] for k in changed})
    return changed
