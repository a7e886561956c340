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
