"""What the module registers with the core's registry: the keyword search provider
and the related products beside one added to the cart (social_mall/search.py's seams),
its console page 智能搜索 (synonyms, try-out), the chat flow
「猜你喜欢」 with its menu entry, the `order.paid` subscriber that records purchases, the
nightly retrain job, dynamic pricing (console 动态定价, the job `intel.pricing` that applies
the merchant's rules every 15 minutes under the guard rails), and its templates. Writes to the synonyms table count as catalog
writes for the core's read cache (storage.cache.watch), so a saved synonym rebuilds the
index on the next search.

Member groups: 「该补货了」 (restock.py: members with a consumable due again, any or by
category) for segments; insights' 精准推送 sends the reminders.

Activity sink: product views (and clicks of recommendations, by their tracking token)
counted in memory, written by the job intel.views every 10 s (views.py).

Subscribers: order.paid → intel.record_purchase. Jobs: intel.retrain (nightly at 03:00
Asia/Shanghai, a daily job: on the worker holding the leader lease; each tenant with
purchases or views; idempotent: a second run stores the same model); intel.pricing
(every STEP_SECONDS; a SKU moves at most once per step bucket, whoever runs it).
"""

from __future__ import annotations

from datetime import time, timedelta, timezone

from sqlalchemy import select

from handlers.context import Services
from social_mall.plugins import Delivery, Registry
from social_mall_intelligence import (HERE, flow_recommend, pricing, restock, textindex, views, web_console,
                                     web_members, web_pricing)
from social_mall_intelligence.models import CycleMark, Interaction, MemberView, Synonym
from social_mall_intelligence.recommendations import Recommender, record_purchase, retrain
from social_mall_intelligence.search import IndexedSearch
from social_mall_intelligence.synonyms import merchant_synonyms
from storage.cache import watch

RETRAIN_AT = time(3, 0, tzinfo=timezone(timedelta(hours=8), "Asia/Shanghai"))   # the shop's quietest hour


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    watch(Synonym, CycleMark)   # a saved cycle mark drops the shelf that serving keeps (recommendations.py)
    recommender = Recommender(now=lambda: svc.clock(), places=reg.place_sources, sinks=reg.activity_sinks)   # the clock seam, read late
    provider = IndexedSearch(synonyms=merchant_synonyms, best_sellers=recommender.best_sellers)   # no hit: best sellers
    counter = views.ViewCounter()
    reg.add_activity_sink(counter)   # product views and recommendation clicks, counted in memory
    reg.set_search(provider)
    reg.add_warmup("intelligence.dictionaries", textindex.warm)   # jieba and pinyin before the first search
    reg.set_related(recommender)
    reg.add_member_groups(restock.groups(lambda: svc.clock()))   # 「该补货了」 for segments (insights' 精准推送)
    web_members.register(reg, recommender)     # the member page's 个性化推荐 (PIPL): shown, switched on request
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow_recommend.build(recommender))
    web_console.register(reg, provider)
    web_pricing.register(reg)

    async def on_paid(d: Delivery) -> None:
        async with svc.uows() as uow:
            await record_purchase(uow, d.tenant_id, str(d.payload["order_no"]), svc.clock(), reg.place_sources)
            await uow.commit()
        recommender.forget_member(d.tenant_id, int(d.payload["member_id"]))   # what they bought leaves their list

    async def retrain_all() -> None:
        await counter.flush(svc.uows)   # this worker's latest views first
        async with svc.uows() as uow:
            tenants = sorted(set((await uow.session.scalars(select(Interaction.tenant_id).distinct())).all())
                             | set((await uow.session.scalars(select(MemberView.tenant_id).distinct())).all()))
        for tenant in tenants:
            async with svc.uows() as uow:
                await retrain(uow, tenant, svc.clock())
                await uow.commit()
            recommender.forget(tenant)   # other workers see the new version within `recheck`

    async def price_step() -> None:
        await pricing.run_all(svc.uows, svc.clock(), reg.price_holds)   # filled by modules after this one

    async def flush_views() -> None:
        await counter.flush(svc.uows)

    reg.subscribe("order.paid", "intel.record_purchase", on_paid)
    reg.add_job("intel.views", views.FLUSH_SECONDS, flush_views)
    reg.add_daily_job("intel.retrain", RETRAIN_AT, retrain_all)
    reg.add_job("intel.pricing", pricing.STEP_SECONDS, price_step)
