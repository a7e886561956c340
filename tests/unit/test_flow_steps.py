"""The shopping tables' steps are pure: given what was said and the state's data they
return the next state, the data to keep and the command for the core."""

from __future__ import annotations

import pytest

from flows import cart, catalog, checkout, home, orders, shop
from flows.engine import Data, Intent, Said, Say, Turn
from social_mall.errors import InvalidAddressError


def number(n: int, state: str, **data: object) -> Turn:
    return Turn(Said(Intent.NUMBER, str(n), n=n), state, data)  # type: ignore[arg-type]


def typed(t: str, state: str, data: Data | None = None) -> Turn:
    return Turn(Said(Intent.TEXT, t), state, data or {})


def test_every_table_row_starts_from_a_declared_state_with_a_hint():
    for flow in (home.FLOW, shop.FLOW, cart.FLOW, checkout.FLOW, orders.FLOW):
        for state, _ in flow.table:
            assert state in flow.hints, (flow.name, state)


def test_picking_a_category_lists_its_first_page():
    step = shop.pick_category(number(2, shop.St.CATEGORIES, cats=[10, 11, 12]))
    assert (step.to, dict(step.data)) == (shop.St.PRODUCTS, {"cat": 11, "page": 1})
    assert step.command == shop.ListProducts(11, "", 1)


@pytest.mark.parametrize("n", [0, 4, 99])
def test_an_unknown_number_keeps_the_list(n: int):
    turn = number(n, shop.St.CATEGORIES, cats=[10, 11, 12])
    step = shop.pick_category(turn)
    assert (step.to, step.data, step.command, step.hint) == (shop.St.CATEGORIES, turn.data, None, True)
    assert step.replies == (Say("chat/bad_number.txt", {"n": n, "count": 3}),)


def test_paging_stops_at_both_ends():
    listing = {"cat": 3, "page": 2, "pages": 2, "items": [1, 2]}
    last = shop.next_page(Turn(Said(Intent.NEXT), shop.St.PRODUCTS, listing))
    assert (last.to, last.command, last.replies) == (shop.St.PRODUCTS, None, (Say("chat/last_page.txt"),))
    back = shop.prev_page(Turn(Said(Intent.PREV), shop.St.PRODUCTS, listing))
    assert back.command == shop.ListProducts(3, "", 1)
    assert back.data["page"] == 1


def test_search_keeps_the_keyword_and_an_empty_one_asks_for_it():
    step = shop.search(Turn(Said(shop.Do.SEARCH, "搜索 草莓", args=("草莓", "")), shop.St.IDLE, {}))
    assert (step.to, step.data["q"], step.command) == (shop.St.PRODUCTS, "草莓", shop.ListProducts(None, "草莓", 1, one_hit_card=True))
    ask = shop.search(Turn(Said(shop.Do.SEARCH, "搜索"), shop.St.IDLE, {}))
    assert (ask.to, ask.command) == (shop.St.SEARCH, None)


def test_picking_a_product_keeps_the_listing_for_back():
    step = shop.pick_product(number(2, shop.St.PRODUCTS, q="茶", page=1, pages=1, items=[7, 8]))
    assert step.command == shop.ShowProduct(8)
    assert dict(step.data) == {"q": "茶", "page": 1, "pages": 1, "items": [7, 8], "product": 8}


def times(n: int | None, qty: int, state: str, data: Data) -> Turn:
    return Turn(Said(Intent.TIMES, f"{n or ''} x{qty}", n=n, qty=qty), state, data)


CARD = {"product": 1, "skus": [5, 6], "q": "橙", "page": 1, "pages": 1, "items": [1, 3]}
CARRIED = {"l_q": "橙", "l_page": 1, "l_pages": 1, "l_items": [1, 3]}


def test_a_sku_number_goes_straight_to_the_summary_with_one_of_it():
    step = shop.pick_sku(number(2, shop.St.SKU, **CARD))
    source = {"src": "buy", "product": 1, "sku": 6, "qty": 1, **CARRIED}
    assert (step.flow, step.to, dict(step.data)) == ("checkout", checkout.St.CONFIRM, source)
    assert step.command == checkout.StartCheckout(source)


def test_a_sku_number_times_a_quantity_buys_that_many():
    step = shop.buy_times(times(1, 3, shop.St.SKU, CARD))
    assert step.command == checkout.StartCheckout({"src": "buy", "product": 1, "sku": 5, "qty": 3, **CARRIED})
    bad = shop.buy_times(times(3, 2, shop.St.SKU, CARD))
    assert (bad.to, bad.command, bad.replies) == (shop.St.SKU, None, (Say("chat/bad_number.txt", {"n": 3, "count": 2}),))


def test_one_sku_is_bought_from_its_card_by_buy_or_a_bare_quantity():
    one = {"product": 4, "skus": [9]}
    assert shop.buy_now(Turn(Said(shop.Do.BUY_NOW, "购买"), shop.St.SKU, one)).command == \
        checkout.StartCheckout({"src": "buy", "product": 4, "sku": 9, "qty": 1})
    assert shop.buy_times(times(None, 2, shop.St.SKU, one)).command == \
        checkout.StartCheckout({"src": "buy", "product": 4, "sku": 9, "qty": 2})
    several = shop.buy_times(times(None, 2, shop.St.SKU, CARD))
    assert (several.to, several.command) == (shop.St.SKU, None)
    assert several.replies == (Say("chat/shop/which_sku.txt", {"count": 2, "qty": 2}),)
    assert shop.buy_now(Turn(Said(shop.Do.BUY_NOW, "购买"), shop.St.SKU, CARD)).command is None


@pytest.mark.parametrize("qty", [0, 100, 10000])
def test_a_quantity_is_bounded_as_the_summary_is_built_not_by_the_step(qty: int):
    """The per-line cap is the member's (99, or more where a unit pricer allows it:
    pricing/unit.max_qty), so the pure steps carry the quantity to the summary, which
    refuses it (tests/e2e/test_chat_purchase.py: 「x0」, 「x10000」; the card stays)."""
    step = shop.buy_times(times(1, qty, shop.St.SKU, CARD))
    assert step.data["qty"] == qty and step.data["src"] == "buy"
    step = checkout.change_qty(times(None, qty, checkout.St.CONFIRM, SUMMARY))
    assert step.data["qty"] == qty


SUMMARY = {"src": "buy", "product": 1, "sku": 6, "qty": 1, **CARRIED, "address": 4, "items": [6, 1],
           "coupon": 0, "points": 20, "shown_total": 7790}


def test_x3_on_the_summary_prices_three_again_at_the_same_address():
    step = checkout.change_qty(times(None, 3, checkout.St.CONFIRM, SUMMARY))
    source = {"src": "buy", "product": 1, "sku": 6, "qty": 3, **CARRIED}
    assert (step.to, dict(step.data)) == (checkout.St.CONFIRM, {**source, "address": 4})
    assert step.command == checkout.Preview(source, 4, coupon=checkout.AUTO, points=20)
    cart_summary = {"src": "cart", "address": 4, "items": [6, 1], "shown_total": 7790}
    refused = checkout.change_qty(times(None, 3, checkout.St.CONFIRM, cart_summary))
    assert (refused.to, refused.command) == (checkout.St.CONFIRM, None)


def test_add_to_cart_from_the_summary_goes_back_to_the_listing():
    step = checkout.add_to_cart_instead(Turn(Said(checkout.Do.ADD_CART, "加购"), checkout.St.CONFIRM, SUMMARY))
    assert (step.flow, step.to, dict(step.data)) == ("shop", shop.St.PRODUCTS,
                                                     {"q": "橙", "page": 1, "pages": 1, "items": [1, 3]})
    assert step.command == catalog.AddToCart(6, 1, back_to_list=True)


def test_back_from_the_summary_shows_the_card_or_the_cart():
    back = checkout.back_out(Turn(Said(Intent.BACK, "返回"), checkout.St.CONFIRM, SUMMARY))
    assert (back.flow, back.to, back.command) == ("shop", shop.St.SKU, catalog.ShowProduct(1))
    assert dict(back.data) == {"q": "橙", "page": 1, "pages": 1, "items": [1, 3], "product": 1}
    from_cart = checkout.back_out(Turn(Said(Intent.BACK, "返回"), checkout.St.CONFIRM, {"src": "cart", "address": 4}))
    assert (from_cart.flow, from_cart.to, from_cart.command) == ("cart", cart.St.LIST, cart.ShowCart())


def test_a_whole_address_goes_to_the_summary_unsaved_and_a_partial_one_asks_for_the_rest():
    ask = {"src": "buy", "product": 1, "sku": 6, "qty": 1}
    step = checkout.typed_address(typed("张三，138 0013 8000，上海市浦东新区世纪大道100号", checkout.St.NEW, ask))
    whole = ("张三", "13800138000", "上海市浦东新区世纪大道100号")
    assert (step.to, dict(step.data)) == (checkout.St.CONFIRM, {**ask, "name": whole[0], "phone": whole[1],
                                                                "detail": whole[2]})
    assert step.command == checkout.Preview(ask, whole, coupon=checkout.AUTO, points=0)
    part = checkout.typed_address(typed("张三 13800138000", checkout.St.NEW, ask))
    assert (part.to, dict(part.data), part.command) == (checkout.St.DETAIL,
                                                        {**ask, "a_name": "张三", "a_phone": "13800138000"}, None)
    assert part.replies == (Say("chat/checkout/ask_field.txt", {
        "have": {"name": "张三", "phone": "13800138000"}, "missing": ["detail"], "parsed": True}),)


def test_cart_edits_need_their_numbers():
    change = cart.change(Turn(Said(cart.Do.SET, "改 2 5", args=("2 5",)), cart.St.IDLE, {}))
    assert change.command == cart.ChangeLine(2, 5)
    remove = cart.delete(Turn(Said(cart.Do.DEL, "删 1", args=("1",)), cart.St.IDLE, {}))
    assert remove.command == cart.ChangeLine(1, None)
    usage = cart.change(Turn(Said(cart.Do.SET, "改 2", args=("2",)), cart.St.IDLE, {}))
    assert (usage.command, usage.replies) == (None, (Say("chat/cart/usage.txt"),))


def test_address_fields_are_checked_as_typed():
    with pytest.raises(InvalidAddressError) as err:
        checkout.enter_phone(typed("12345", checkout.St.PHONE, {"a_name": "张三"}))
    assert err.value.field == "phone"
    with pytest.raises(InvalidAddressError):
        checkout.enter_phone(typed("23800138000", checkout.St.PHONE, {"a_name": "张三"}))
    with pytest.raises(InvalidAddressError) as err:
        checkout.enter_name(typed("名" * 21, checkout.St.NAME))
    assert err.value.field == "name"
    ok = checkout.enter_phone(typed("138-0013 8000", checkout.St.PHONE, {"src": "cart", "a_name": "张三"}))
    assert (ok.to, dict(ok.data)) == (checkout.St.DETAIL, {"src": "cart", "a_name": "张三", "a_phone": "13800138000"})


def test_the_last_field_shows_the_summary_with_the_typed_address_not_yet_saved():
    data = {"src": "cart", "a_name": "张三", "a_phone": "13800138000"}
    step = checkout.enter_detail(typed("浙江省杭州市文三路100号", checkout.St.DETAIL, data))
    typed_address = ("张三", "13800138000", "浙江省杭州市文三路100号")
    assert dict(step.data) == {"src": "cart", "name": "张三", "phone": "13800138000", "detail": typed_address[2]}
    assert step.command == checkout.Preview({"src": "cart"}, typed_address, coupon=checkout.AUTO, points=0)


def test_confirm_places_exactly_the_previewed_items_at_the_total_shown():
    data = {"src": "cart", "address": 4, "items": [11, 2, 12, 1], "shown_total": 8780}
    step = checkout.confirm(Turn(Said(Intent.YES, "确认"), checkout.St.CONFIRM, data))
    assert (step.flow, step.to) == ("orders", orders.St.DETAIL)
    assert step.command == checkout.PlaceOrder(((11, 2), (12, 1)), 4, from_cart=True, shown_total=8780,
                                               source={"src": "cart"})
    buy_data = {"src": "buy", "product": 3, "sku": 11, "qty": 1, "address": 4, "items": [11, 1], "shown_total": 100}
    buy = checkout.confirm(Turn(Said(Intent.YES), checkout.St.CONFIRM, buy_data))
    assert buy.command == checkout.PlaceOrder(((11, 1),), 4, from_cart=False, shown_total=100,
                                              source={"src": "buy", "product": 3, "sku": 11, "qty": 1})
    stale = checkout.confirm(Turn(Said(Intent.YES), checkout.St.CONFIRM, {"src": "cart"}))
    assert (stale.flow, stale.to, stale.command) == ("home", home.St.IDLE, None)


def test_confirm_without_a_total_shown_shows_the_summary_again():
    data = {"src": "cart", "address": 4, "items": [11, 2], "coupon": 0, "points": 0}
    step = checkout.confirm(Turn(Said(Intent.YES, "确认"), checkout.St.CONFIRM, data))
    assert (step.flow, step.to) == ("", checkout.St.CONFIRM)
    assert step.command == checkout.Preview({"src": "cart"}, 4, coupon=0, points=0)


def test_cancelling_an_order_needs_one_on_screen():
    shown = orders.cancel(Turn(Said(orders.Do.CANCEL), orders.St.DETAIL, {"order": 7, "orders": [7]}))
    assert (shown.to, shown.command) == (orders.St.DETAIL, orders.CancelOrder(7))
    listed = orders.pick_first(Turn(Said(orders.Do.CANCEL), orders.St.LIST, {"orders": [7]}))
    assert (listed.to, listed.command, listed.replies) == (orders.St.LIST, None, (Say("chat/orders/pick_first.txt"),))
