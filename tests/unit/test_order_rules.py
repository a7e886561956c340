"""The order transition table and stock invariants, as properties (hypothesis)."""

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from social_mall.orders.rules import (
    RESTOCK_ON,
    TERMINAL,
    TRANSITIONS,
    OrderStatus,
    after_refund,
    can_move,
    new_order_no,
)

S = OrderStatus


def test_every_status_is_in_the_table_and_terminal_ones_have_no_exit():
    assert set(TRANSITIONS) == set(OrderStatus)
    assert TERMINAL == {S.CANCELLED, S.REFUNDED}


def test_paid_orders_cannot_be_cancelled_and_unpaid_cannot_ship():
    assert not can_move(S.PAID, S.CANCELLED)
    assert not can_move(S.PENDING_PAYMENT, S.SHIPPED)
    assert can_move(S.PENDING_PAYMENT, S.PAID)


#: The one way back: a refund request that can no longer complete (the gateway refused or
#: closed part of it) returns the order to where it was before the request.
BACK = {(S.REFUND_REQUESTED, s) for s in (S.PAID, S.SHIPPED, S.COMPLETED)}


@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=30))
def test_any_walk_through_the_table_reaches_every_status_at_most_once_but_for_a_failed_refund(moves):
    assert all(can_move(src, dst) for src, dst in BACK)
    state, seen = S.PENDING_PAYMENT, [S.PENDING_PAYMENT]
    for dst in moves:
        if can_move(state, dst) and (state, dst) not in BACK:
            state = dst
            seen.append(dst)
    assert len(seen) == len(set(seen)), "the table has a cycle outside a failed refund request"


@pytest.mark.parametrize("refunded, in_flight, shipped, completed, expected", [
    (1000, 0, False, False, S.REFUNDED),            # the last fen refunded
    (400, 600, False, False, S.REFUND_REQUESTED),   # the rest is still with the gateway
    (400, 0, False, False, S.PAID),                 # a part failed: back, the rest refundable again
    (400, 100, True, False, S.SHIPPED),
    (0, 0, True, True, S.COMPLETED),
])
def test_a_settled_refund_leaves_the_order_where_the_money_says(refunded, in_flight, shipped, completed, expected):
    assert after_refund(S.REFUND_REQUESTED, paid_fen=1000, refunded_fen=refunded, in_flight_fen=in_flight,
                        shipped=shipped, completed=completed) == expected
    assert expected == S.REFUND_REQUESTED or can_move(S.REFUND_REQUESTED, expected)
    # an order not waiting for a full refund keeps its status (partial refunds of a paid order)
    assert after_refund(S.PAID, paid_fen=1000, refunded_fen=refunded, in_flight_fen=in_flight, shipped=shipped,
                        completed=completed) == S.PAID


def test_order_numbers_are_unique_and_not_sequential():
    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    numbers = {new_order_no(now) for _ in range(2000)}
    assert len(numbers) == 2000
    assert all(len(n) == 24 and n.isdigit() for n in numbers)


class OrderMachine(RuleBasedStateMachine):
    """A model of one SKU's stock and orders moved by the table; every move is applied
    as a conditional update would (only from the status it expects)."""

    def __init__(self) -> None:
        super().__init__()
        self.initial = 20
        self.stock = self.initial
        self.orders: list[tuple[OrderStatus, int]] = []
        self.paid_in = 0
        self.refunded_out = 0

    def _move(self, i: int, src: OrderStatus, dst: OrderStatus) -> bool:
        status, qty = self.orders[i]
        if status != src or not can_move(src, dst):
            return False  # the conditional UPDATE matched no row
        self.orders[i] = (dst, qty)
        if (src, dst) in RESTOCK_ON:
            self.stock += qty
        return True

    @rule(qty=st.integers(1, 5))
    def place(self, qty):
        if self.stock >= qty:  # conditional decrement
            self.stock -= qty
            self.orders.append((S.PENDING_PAYMENT, qty))

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 100), repeats=st.integers(1, 3))
    def pay_callback(self, i, repeats):
        i %= len(self.orders)
        for _ in range(repeats):  # repeated callbacks
            if self._move(i, S.PENDING_PAYMENT, S.PAID):
                self.paid_in += self.orders[i][1]

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 100))
    def cancel_or_sweep(self, i):
        self._move(i % len(self.orders), S.PENDING_PAYMENT, S.CANCELLED)

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 100))
    def refund(self, i):
        i %= len(self.orders)
        if self._move(i, S.PAID, S.REFUND_REQUESTED) and self._move(i, S.REFUND_REQUESTED, S.REFUNDED):
            self.refunded_out += self.orders[i][1]

    @precondition(lambda self: self.orders)
    @rule(i=st.integers(0, 100))
    def ship(self, i):
        self._move(i % len(self.orders), S.PAID, S.SHIPPED)

    @invariant()
    def stock_never_negative_and_conserved(self):
        assert self.stock >= 0
        held = sum(q for s, q in self.orders if s not in (S.CANCELLED, S.REFUNDED))
        assert self.stock + held == self.initial

    @invariant()
    def money_in_equals_money_kept_plus_refunded(self):
        kept = sum(q for s, q in self.orders if s in (S.PAID, S.SHIPPED, S.COMPLETED, S.REFUND_REQUESTED))
        assert self.paid_in == kept + self.refunded_out


TestOrderMachine = OrderMachine.TestCase
TestOrderMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
