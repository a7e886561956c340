"""The recommender's rules, no I/O."""

from __future__ import annotations

from social_mall_intelligence import recommend as R

# members → products bought; 1/2 bought together often, 3 popular alone
HISTORIES = {
    1: {1: 1.0, 2: 1.0}, 2: {1: 1.0, 2: 1.0}, 3: {1: 1.0, 2: 1.0, 3: 1.0},
    4: {3: 1.0}, 5: {3: 1.0}, 6: {3: 1.0}, 7: {3: 1.0, 4: 1.0},
}
CATS = {1: 10, 2: 10, 3: 20, 4: 20, 5: 10}


def test_products_bought_together_are_neighbours_and_popularity_counts_buyers():
    model = R.fit(HISTORIES, CATS)
    assert model.neighbours[1][0][0] == 2 and model.neighbours[2][0][0] == 1
    assert model.popular[:3] == (3, 1, 2)
    assert model.popular_by_category[10] == (1, 2)


def test_a_member_gets_neighbours_first_then_popular_never_what_they_bought_or_what_is_excluded():
    model = R.fit(HISTORIES, CATS)
    assert R.recommend(model, {1: 1.0}, 3, category_of=CATS) == [2, 3, 4]
    assert R.recommend(model, {1: 1.0}, 3, exclude={2}, category_of=CATS) == [3, 4]
    assert 1 not in R.recommend(model, {1: 1.0}, 10, category_of=CATS)


def test_not_personalised_is_the_same_popular_list_for_everyone():
    model = R.fit(HISTORIES, CATS)
    assert R.recommend(model, {1: 1.0}, 3, personalised=False) == R.recommend(model, {4: 1.0}, 3, personalised=False) \
        == [3, 1, 2]


def test_also_bought_and_an_empty_shop():
    model = R.fit(HISTORIES, CATS)
    assert R.also_bought(model, 1, 2) == [2, 3]
    assert R.also_bought(model, 1, 2, exclude={2}) == [3]
    empty = R.fit({}, {})
    assert R.recommend(empty, {}, 5) == [] and R.also_bought(empty, 1, 5) == []


# member → product → the days it was bought: tea (7) every ~30 days by three members, once by a
# fourth; the kettle (8) bought twice by one member only; rice (9), in tea's category, by one buyer
PURCHASES = {
    1: {7: [0, 30, 61], 8: [0, 200]}, 2: {7: [10, 38, 40]}, 3: {7: [5, 37], 8: [5]}, 4: {7: [100], 9: [3, 90]},
    5: {8: [1]}, 6: {8: [2]},
}
CYCLE_CATS = {7: 30, 8: 40, 9: 30}


def test_a_cycle_is_the_median_of_the_members_median_intervals_and_needs_support():
    cycles = R.cycles(PURCHASES, CYCLE_CATS)
    # member 1: 30, 31 → 30.5; member 2: 28 (40 is the same need as 38); member 3: 32
    assert cycles[7] == 30.5
    assert 8 not in cycles        # one member of four bought the kettle again: a durable
    assert cycles[9] == 31.25     # too few of its own: its category's (28, 30.5, 32 of tea; 87 of rice)
    assert R.cycles(PURCHASES, CYCLE_CATS, min_support=4) == {7: 31.25, 9: 31.25}   # the category's only
    assert R.cycles(PURCHASES, CYCLE_CATS, min_support=5) == {}


def test_a_durable_never_comes_back_a_consumable_after_its_cycle_first_then_like_any_product():
    cycle = {7: 30.0}
    assert R.due({7: 0, 8: 0}, cycle, 14) == ([], set(), {7, 8})          # within half the cycle; a durable
    assert R.due({7: 0, 8: 0}, cycle, 15) == ([7], set(), {8})            # due: 「该补货了」
    assert R.due({7: 0, 8: 0}, cycle, 91) == ([], {7}, {8})               # lapsed after three cycles
    assert R.due({7: 0}, cycle, 26, declared={7}) == ([], set(), {7})     # the merchant's 30 days: due at 27
    assert R.due({7: 0}, cycle, 27, declared={7}) == ([7], set(), set())
    assert R.due({7: 0, 9: 10}, {7: 30.0, 9: 10.0}, 40)[0] == [9, 7]    # the most overdue first (3 cycles vs 1.3)
    model = R.fit(HISTORIES, CATS)
    assert R.recommend(model, {1: 1.0, 3: 1.0}, 3, category_of=CATS) == [2, 4]
    assert R.recommend(model, {1: 1.0, 3: 1.0}, 3, category_of=CATS, restock=[3]) == [3, 2, 4]
    assert R.recommend(model, {1: 1.0, 3: 1.0}, 3, category_of=CATS, back={3}) == [2, 4, 3]   # ranked as any
    assert R.recommend(model, {1: 1.0, 3: 1.0}, 3, category_of=CATS, restock=[3], personalised=False) == [3, 1, 2]
