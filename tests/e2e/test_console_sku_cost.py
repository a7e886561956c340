"""A SKU's cost (成本价) through the console and the admin API, on both backends: entered
with a new product or SKU, changed and cleared on the product page, read and patched
over the API, audited; a bad cost is refused with nothing changed; 客服 never sees it, nor
does a member (the chat card and the H5 page)."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import AuditEntry, Product, Sku
from tests.fakes.console_kit import issue_token, login, make_admin


async def _count(mall, model) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model)) or 0)


async def _sku(mall, sku_id: int) -> tuple[int, int | None]:
    async with mall.svc.uows() as uow:
        row = (await uow.session.execute(select(Sku.price_fen, Sku.cost_fen).where(Sku.id == sku_id))).one()
    return int(row[0]), row[1]


async def _new_product(mall, csrf: str, **sku: str) -> tuple[int, int]:
    async with mall.svc.uows() as uow:
        cat = await uow.session.scalar(select(func.min(Product.category_id)))
    form = {"_csrf": csrf, "title": "手工牛轧糖", "category_id": str(cat), "sku_spec": "200g", "sku_price": "39.90",
            "sku_stock": "10", "on_shelf": "1", **sku}
    resp = await mall.client.post("/console/products", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    pid = int(resp.headers["Location"].split("/")[3].split("?")[0])
    async with mall.svc.uows() as uow:
        return pid, int(await uow.session.scalar(select(Sku.id).where(Sku.product_id == pid)))


async def _post_sku(mall, csrf: str, pid: int, sku_id: int, **form: str):
    price, _ = await _sku(mall, sku_id)
    async with mall.svc.uows() as uow:
        stock = int(await uow.session.scalar(select(Sku.stock).where(Sku.id == sku_id)))
    data = {"_csrf": csrf, "spec": "200g", "price": f"{price // 100}.{price % 100:02d}", "stock": str(stock),
            "stock_was": str(stock), "on_shelf": "1", **form}
    return await mall.client.post(f"/console/products/{pid}/skus/{sku_id}", data=data, allow_redirects=False)


async def test_the_cost_is_entered_changed_cleared_and_audited_on_the_product_page(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    pid, sku_id = await _new_product(mall, csrf, sku_cost="18.50")
    assert await _sku(mall, sku_id) == (3990, 1850)
    page = await (await mall.client.get(f"/console/products/{pid}")).text()
    assert "成本（元）" in page and 'name="cost" form="sku-%d" inputmode="decimal" placeholder="未填" value="18.50"' % sku_id in page

    assert (await _post_sku(mall, csrf, pid, sku_id, cost="20")).status == 303
    assert await _sku(mall, sku_id) == (3990, 2000)
    async with mall.svc.uows() as uow:
        audit = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "sku.update")
                                         .order_by(AuditEntry.id.desc()))
    assert (audit.before["cost_fen"], audit.after["cost_fen"]) == (1850, 2000)

    before = await _count(mall, AuditEntry)
    for bad in ("-1", "abc", "0", "20.001"):
        resp = await _post_sku(mall, csrf, pid, sku_id, cost=bad)
        assert resp.status == 400 and "cost" in await resp.text(), bad
    assert await _sku(mall, sku_id) == (3990, 2000) and await _count(mall, AuditEntry) == before

    assert (await _post_sku(mall, csrf, pid, sku_id, cost="")).status == 303      # cleared
    assert await _sku(mall, sku_id) == (3990, None)
    add = await mall.client.post(f"/console/products/{pid}/skus", allow_redirects=False, data={
        "_csrf": csrf, "spec": "500g", "price": "89", "cost": "41.20", "stock": "5"})
    assert add.status == 303
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(Sku.cost_fen).where(Sku.product_id == pid, Sku.spec == "500g")) == 4120


async def test_service_staff_and_members_never_see_a_cost(mall):
    await make_admin(mall.svc.uows, "boss")
    pid, sku_id = await _new_product(mall, await login(mall.client, "boss"), sku_cost="18.53")
    await make_admin(mall.svc.uows, "kefu", "service")
    await login(mall.client, "kefu")
    page = await (await mall.client.get(f"/console/products/{pid}")).text()
    assert "手工牛轧糖" in page and "成本" not in page and "18.53" not in page
    h5 = await (await mall.client.get(f"/h5/product/demo/{pid}")).text()
    assert "手工牛轧糖" in h5 and "18.53" not in h5 and "成本" not in h5


async def test_the_api_reads_and_patches_a_cost_for_those_who_may(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, csrf)}"}
    made = await mall.client.post("/api/v1/products", headers=auth, json={
        "title": "桂花糕", "category_id": 1, "skus": [{"spec": "盒", "price_fen": 2800, "stock": 3, "cost_fen": 1200}]})
    assert made.status == 201, await made.text()
    (sku,) = (await made.json())["skus"]
    assert sku["cost_fen"] == 1200
    patched = await mall.client.patch(f"/api/v1/skus/{sku['id']}", headers=auth, json={"cost_fen": 1300})
    assert patched.status == 200 and (await patched.json())["cost_fen"] == 1300
    kept = await mall.client.patch(f"/api/v1/skus/{sku['id']}", headers=auth, json={"stock_delta": 1})
    assert (await kept.json())["cost_fen"] == 1300                           # absent: unchanged
    before = await _count(mall, AuditEntry)
    for bad in (0, -5, "12", True, 10_000_000_01):
        resp = await mall.client.patch(f"/api/v1/skus/{sku['id']}", headers=auth, json={"cost_fen": bad})
        assert resp.status == 422 and (await resp.json())["error"]["field"] == "cost_fen", bad
    assert (await _sku(mall, sku["id"]))[1] == 1300 and await _count(mall, AuditEntry) == before
    cleared = await mall.client.patch(f"/api/v1/skus/{sku['id']}", headers=auth, json={"cost_fen": None})
    assert (await cleared.json())["cost_fen"] is None and (await _sku(mall, sku["id"]))[1] is None

    await make_admin(mall.svc.uows, "kefu", "service")
    kefu = {"Authorization": f"Bearer {await issue_token(mall.client, await login(mall.client, 'kefu'))}"}
    got = await (await mall.client.get(f"/api/v1/products/{(await made.json())['id']}", headers=kefu)).json()
    assert got["skus"][0]["price_fen"] == 2800 and "cost_fen" not in got["skus"][0]
    listed = await (await mall.client.get("/api/v1/products?q=桂花糕", headers=kefu)).json()
    assert listed["items"] and all("cost_fen" not in s for p in listed["items"] for s in p["skus"])
