"""Console side of group buying (拼团): the campaign form (yuan → fen, Shanghai local
times → UTC), the campaign list and a campaign's teams. Creation goes through
social_mall.groupbuy.service.create_campaign (validation, audit)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from social_mall.console import rules
from social_mall.console.auth import AdminView
from social_mall.console.errors import InvalidInputError
from social_mall.errors import NotFoundError
from social_mall.groupbuy import rules as gb_rules
from social_mall.groupbuy import service as gb
from social_mall.views import Page
from storage.console_modules_repos import ConsoleModulesRepo
from storage.uow import UnitOfWork

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True)
class SkuChoice:
    id: int
    spec: str
    price_fen: int
    stock: int


@dataclass(frozen=True)
class ProductChoice:
    id: int
    title: str
    skus: tuple[SkuChoice, ...]


@dataclass(frozen=True)
class CampaignForm:
    product_id: int
    title: str
    terms: gb_rules.CampaignTerms
    group_prices: dict[int, int]


def local_text(at: datetime) -> str:
    """A UTC instant as the value of a datetime-local input (Shanghai)."""
    return at.astimezone(rules.SHANGHAI).strftime(LOCAL_FORMAT)


def parse_local(value: object, field: str) -> datetime:
    s = rules.text(value if value is not None else "", field, max_len=20, min_len=1)
    try:
        naive = datetime.strptime(s[:16], LOCAL_FORMAT)
    except ValueError:
        raise InvalidInputError(field, "date_format") from None
    if not rules.MIN_DATE <= naive.date() <= rules.MAX_DATE:  # year 1 in Shanghai is year 0 in UTC
        raise InvalidInputError(field, "range")
    return naive.replace(tzinfo=rules.SHANGHAI).astimezone(timezone.utc)


def _fen_or_zero(value: object, field: str) -> int:
    s = str(value or "").strip()
    if s in ("", "0", "0.0", "0.00"):
        return 0
    return rules.parse_price(s, field)


def _percent_bp(value: object, field: str) -> int:
    """"5" / "2.5" / "12.25" (%) → basis points, without floats."""
    s = str(value or "").strip().rstrip("%").strip()
    whole, _, frac = s.partition(".")
    if not (whole.isascii() and whole.isdigit() and len(whole) <= 3 and (frac == "" or (
            frac.isascii() and frac.isdigit() and len(frac) <= 2))):
        raise InvalidInputError(field, "text")
    bp = int(whole) * 100 + int((frac + "00")[:2])
    if not 0 < bp <= gb_rules.MAX_LEADER_REWARD_BP:
        raise InvalidInputError(field, "range")
    return bp


def _leader_reward(form: Mapping[str, object]) -> dict[str, int]:
    """团长奖励: none, a fixed amount per successful team (元), or a share of what the team
    paid for its goods (%)."""
    kind = str(form.get("leader_reward_kind", "") or "none")
    raw = form.get("leader_reward", "")
    if kind == "fixed":
        return {"leader_reward_fen": rules.parse_price(str(raw or ""), "团长奖励")}
    if kind == "percent":
        return {"leader_reward_bp": _percent_bp(raw, "团长奖励（%）")}
    if kind != "none":
        raise InvalidInputError("团长奖励", "text")
    return {}


async def product_choices(uow: UnitOfWork, tenant: int, limit: int = 200) -> tuple[ProductChoice, ...]:
    products, _ = await uow.catalog.products(tenant, category_id=None, keyword=None, offset=0, limit=limit)
    return tuple(ProductChoice(p.id, p.title, ()) for p in products)


async def product_choice(uow: UnitOfWork, tenant: int, product_id: int) -> ProductChoice:
    p = await uow.catalog.product(tenant, product_id)
    if p is None:
        raise NotFoundError("product", product_id)
    skus = await uow.catalog.skus(tenant, product_id)
    return ProductChoice(p.id, p.title, tuple(SkuChoice(s.id, s.spec, s.price_fen, s.stock) for s in skus))


def parse_campaign(form: Mapping[str, object], product: ProductChoice) -> CampaignForm:
    title = rules.text(form.get("title", "") or product.title, "title", max_len=80, min_len=1)
    starts = parse_local(form.get("starts_at"), "starts_at")
    ends = parse_local(form.get("ends_at"), "ends_at")
    if ends <= starts:
        raise InvalidInputError("ends_at", "range")
    terms = gb_rules.CampaignTerms(
        team_size=rules.parse_int(form.get("team_size", ""), "team_size", lo=gb_rules.MIN_SIZE, hi=gb_rules.MAX_SIZE),
        lifetime_hours=rules.parse_int(form.get("lifetime_hours", ""), "lifetime_hours", lo=1,
                                       hi=gb_rules.MAX_LIFETIME_HOURS),
        starts_at=starts, ends_at=ends,
        max_teams_per_member=rules.parse_int(form.get("max_teams_per_member", "0") or "0", "max_teams_per_member",
                                             lo=0, hi=100),
        max_qty=rules.parse_int(form.get("max_qty", "") or "5", "max_qty", lo=1, hi=99),
        leader_discount_fen=_fen_or_zero(form.get("leader_discount", ""), "leader_discount"),
        simulated=str(form.get("simulated", "")) in ("1", "on", "true"),
        max_extend_hours=rules.parse_int(form.get("max_extend_hours", "24") or "0", "max_extend_hours",
                                         lo=0, hi=gb_rules.MAX_LIFETIME_HOURS),
        **_leader_reward(form),
    )
    prices: dict[int, int] = {}
    for sku in product.skus:
        raw = str(form.get(f"price_{sku.id}", "") or "").strip()
        if not raw:
            continue
        fen = rules.parse_price(raw, f"price_{sku.id}")
        if fen > sku.price_fen:
            raise InvalidInputError(f"{sku.spec} 拼团价", "range")
        prices[sku.id] = fen
    if not prices:
        raise InvalidInputError("拼团价", "required")
    return CampaignForm(product.id, title, terms, prices)


async def create(uow: UnitOfWork, tenant: int, admin: AdminView, f: CampaignForm) -> gb.CampaignView:
    return await gb.create_campaign(uow, tenant, product_id=f.product_id, title=f.title, terms=f.terms,
                                    group_prices=f.group_prices, actor=admin.actor)


async def list_campaigns(uow: UnitOfWork, tenant: int, *, page: int, per_page: int = 20
                         ) -> Page[gb.CampaignView]:
    rows, total = await ConsoleModulesRepo(uow.session).campaigns(tenant, offset=(page - 1) * per_page,
                                                                  limit=per_page)
    return Page(tuple([await gb.load_campaign(uow, tenant, c.id) for c in rows]), total, page, per_page)


async def campaign_teams(uow: UnitOfWork, tenant: int, campaign_id: int, *, page: int, per_page: int = 50
                         ) -> tuple[gb.CampaignView, Page[gb.TeamView]]:
    campaign = await gb.load_campaign(uow, tenant, campaign_id)   # NotFoundError for another tenant's id
    rows, total = await ConsoleModulesRepo(uow.session).teams_of(tenant, campaign_id, offset=(page - 1) * per_page,
                                                                 limit=per_page)
    return campaign, Page(tuple(gb.team_view(t) for t in rows), total, page, per_page)


def default_window(now: datetime) -> tuple[str, str]:
    start = now.replace(second=0, microsecond=0)
    return local_text(start), local_text(start + timedelta(days=7))
