from social_mall.catalog.service import list_categories, list_products


async def test_demo_catalog_has_four_categories_and_twenty_products(uows, demo):
    async with uows() as uow:
        cats = await list_categories(uow, demo.id)
        page = await list_products(uow, demo.id, per_page=50)
    assert [c.name for c in cats] == ["水果生鲜", "休闲零食", "日用百货", "茶饮冲调"]
    assert page.total == 20
    assert all(card.min_price_fen > 0 for card in page.items)


async def test_search_finds_chinese_keyword(uows, demo):
    async with uows() as uow:
        page = await list_products(uow, demo.id, keyword="草莓")
    assert [c.title for c in page.items] == ["丹东草莓"]
