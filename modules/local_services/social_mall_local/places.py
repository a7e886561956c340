"""Where a member shops, as local services know it (the core's place seam,
social_mall/places.py): the store the member picked (「附近门店」) and its city; an order
picked up or delivered by a store: that store and its city. A recommendation's cold start
reads them as "store:<id>" and "city:<name>" without reading this module's tables."""

from __future__ import annotations

from collections.abc import Sequence

from social_mall.places import CITY, city_of, place
from social_mall_local.repos import LocalRepo
from storage.uow import UnitOfWork

STORE = "store"


class StorePlaces:
    async def member_places(self, uow: UnitOfWork, tenant: int, member: int) -> Sequence[str]:
        store = await LocalRepo(uow.session).member_store(tenant, member)
        if store is None:
            return ()
        city = city_of(store.address)
        return (place(STORE, store.id),) + ((place(CITY, city),) if city else ())

    async def order_places(self, uow: UnitOfWork, tenant: int, order_id: int) -> Sequence[str]:
        repo = LocalRepo(uow.session)
        held = await repo.fulfilment(tenant, order_id)
        if held is None:
            return ()
        store = await repo.store(tenant, held.store_id)
        city = city_of(store.address) if store is not None else ""
        return (place(STORE, held.store_id),) + ((place(CITY, city),) if city else ())
