"""The shopping tables' steps are pure: given what was said and the state's data they
return the next state, the data to keep and the command for the core."""

from __future__ import annotations

import pytest

from flows import cart, checkout, home, orders, shop
from flows.engine import Data, Intent, Said, Say, Turn
from social_mall.errors import InvalidAddressError, InvalidQuantityError


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
    assert (step.to, step.data["q"], step.command) == (shop.St.PRODUCTS, "草莓", shop.ListProducts(None, "草莓", 1))
    ask = shop.search(Turn(Said(shop.Do.SEARCH, "搜索"), shop.St.IDLE, {}))
    assert (ask.to, ask.command) == (shop.St.SEARCH, None)


def test_picking_a_product_keeps_the_listing_for_back():
    step = shop.pick_product(number(2, shop.St.PRODUCTS, q="茶", page=1, pages=1, items=[7, 8]))
    assert step.command == shop.ShowProduct(8)
    assert dict(step.data) == {"q": "茶", "page": 1, "pages": 1, "items": [7, 8], "product": 8}


@pytest.mark.parametrize("qty", [0, 100, 10000])
def test_quantity_outside_1_to_99_is_refused(qty: int):
    with pytest.raises(InvalidQuantityError) as err:
        shop.enter_qty(number(qty, shop.St.QTY, product=1, sku=2))
    assert err.value.facts() == {"qty": qty, "max_qty": 99}


def test_quantity_then_choice():
    step = shop.enter_qty(number(3, shop.St.QTY, product=1, sku=2))
    assert (step.to, step.data["qty"], step.command) == (shop.St.ACTION, 3, shop.ChooseSku(1, 2, 3))
    at_action = number(2, shop.St.ACTION, product=1, sku=2, qty=3)
    buy = shop.choose_action(at_action)
    assert (buy.flow, buy.to) == ("checkout", checkout.St.ADDRESS)
    assert buy.command == checkout.StartCheckout({"src": "buy", "product": 1, "sku": 2, "qty": 3})
    add = shop.choose_action(number(1, shop.St.ACTION, product=1, sku=2, qty=3, items=[1], page=1))
    assert (add.to, add.command) == (shop.St.PRODUCTS, shop.AddToCart(2, 3))
    assert shop.choose_action(number(3, shop.St.ACTION, product=1, sku=2, qty=3)).command is None


def test_cart_edits_need_their_numbers():
    change = cart.change(Turn(Said(cart.Do.SET, "改 2 5", args=("2 5",)), cart.St.IDLE, {}))
    assert change.command == cart.ChangeLine(2, 5)
    remove = cart.delete(Turn(Said(cart.Do.DEL, "删 1", args=("1",)), cart.St.IDLE, {}))
    assert remove.command == cart.ChangeLine(1, None)
    usage = cart.change(Turn(Said(cart.Do.SET, "改 2", args=("2",)), cart.St.IDLE, {}))
    assert (usage.command, usage.replies) == (None, (Say("chat/cart/usage.txt"),))


def test_address_fields_are_checked_as_typed():
    with pytest.raises(InvalidAddressError) as err:
        checkout.enter_phone(typed("12345", checkout.St.PHONE, {"name": "张三"}))
    assert err.value.field == "phone"
    with pytest.raises(InvalidAddressError):
        checkout.enter_phone(typed("23800138000", checkout.St.PHONE, {"name": "张三"}))
    with pytest.raises(InvalidAddressError) as err:
        checkout.enter_name(typed("名" * 21, checkout.St.NAME))
    assert err.value.field == "name"
    ok = checkout.enter_phone(typed("138-0013 8000", checkout.St.PHONE, {"src": "cart", "name": "张三"}))
    assert (ok.to, dict(ok.data)) == (checkout.St.DETAIL, {"src": "cart", "name": "张三", "phone": "13800138000"})


def test_detail_saves_the_address_in_the_command_and_forgets_name_and_phone():
    data = {"src": "cart", "name": "张三", "phone": "13800138000"}
    step = checkout.enter_detail(typed("浙江省杭州市文三路100号", checkout.St.DETAIL, data))
    assert dict(step.data) == {"src": "cart"}
    assert step.command == checkout.Preview({"src": "cart"}, new=("张三", "13800138000", "浙江省杭州市文三路100号"))


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
    assert step.command == checkout.Preview({"src": "cart"}, address_id=4, coupon=0, points=0)


def test_cancelling_an_order_needs_one_on_screen():
    shown = orders.cancel(Turn(Said(orders.Do.CANCEL), orders.St.DETAIL, {"order": 7, "orders": [7]}))
    assert (shown.to, shown.command) == (orders.St.DETAIL, orders.CancelOrder(7))
    listed = orders.pick_first(Turn(Said(orders.Do.CANCEL), orders.St.LIST, {"orders": [7]}))
    assert (listed.to, listed.command, listed.replies) == (orders.St.LIST, None, (Say("chat/orders/pick_first.txt"),))
