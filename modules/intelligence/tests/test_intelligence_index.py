"""The index's rules, no I/O: every way a member types a product's name, the slots rule,
the merchant's synonyms."""

from __future__ import annotations

import pytest

from social_mall_intelligence.search import nearest_categories
from social_mall_intelligence.textindex import Doc, build, normalize, parse_synonyms, search

DOCS = [
    Doc(1, "法式碎花连衣裙", "夏季新款 收腰显瘦", "女装", ("红色 / S", "红色 / L", "蓝色 / L")),
    Doc(2, "纯棉短袖T恤", "宽松百搭", "女装", ("白色 / L", "黑色 / M")),
    Doc(3, "高腰半身裙", "A字 百褶", "女装", ("黑色 / S", "红色 / M")),
    Doc(4, "赣南脐橙", "当季现摘 5斤装", "水果生鲜", ("5斤装",)),
    Doc(5, "红色针织开衫", "", "女装", ("红色 / L",)),
    Doc(6, "不锈钢保温杯", "500ml", "日用百货", ("星空蓝",)),
    Doc(7, "学生马丁靴", "厚底", "鞋靴", ("黑色 / 39",)),
]


@pytest.fixture(scope="module")
def index():
    return build(DOCS)


def ids(index, q: str) -> list[int]:
    return [int(i) for i in search(index, q)[0]]


@pytest.mark.parametrize("q", ["连衣裙", "lianyiqun", "LianYiQun", "lian yi qun", "lyq", "连衣群", "连一裙", "ｌｙｑ"])
def test_a_dress_is_found_however_it_is_typed(index, q):
    assert ids(index, q) == [1]


@pytest.mark.parametrize("q, want", [("baowenbei", 6), ("bwb", 6), ("保温悲", 6), ("mdx", 7), ("马丁鞋", 7),
                                     ("橘子", 4), ("短袖", 2), ("t恤", 2), ("T血", 2)])
def test_pinyin_initials_typos_and_synonyms(index, q, want):
    assert ids(index, q)[0] == want


def test_all_attribute_words_met_rank_first_and_half_is_the_least(index):
    assert ids(index, "红色 裙子 L码") == [1, 3, 5]   # 1 meets all three; 3 and 5 two of three
    assert set(ids(index, "红色 裙子 XL码 纯棉")) == {1, 3}  # two of four at least (5: only 红色)
    assert ids(index, "不存在的东西") == []             # 不 alone is not half of the words


def test_unknown_text_finds_nothing(index):
    assert ids(index, "xyzzy") == [] and ids(index, "  ") == [] and ids(index, "￥%……") == []


def test_an_empty_shelf_finds_nothing():
    assert ids(build([]), "连衣裙") == []


def test_merchant_synonyms_are_one_way_and_lines_without_equals_are_skipped():
    syn = parse_synonyms(["仙女裙 = 连衣裙, 半身裙", "随便写的", " = 空", "连衣裙 = 连衣裙"])
    assert syn == {"仙女裙": ("连衣裙", "半身裙")}
    index = build(DOCS, syn)
    assert ids(index, "仙女裙") == [1, 3] or ids(index, "仙女裙") == [3, 1]
    assert ids(index, "裙子") == []   # the built-in synonyms were replaced here


def test_normalize_folds_width_case_and_size_suffix():
    assert normalize("ＸＬ码 Ｔ恤") == "xl t恤"
    assert normalize("42号") == "42"


def test_nearest_categories_by_characters_and_pinyin():
    names = ["女装", "水果生鲜", "日用百货"]
    assert nearest_categories(names, "女士皮包")[0] == "女装"
    assert nearest_categories(names, "shuiguo")[0] == "水果生鲜"
    assert nearest_categories(names, "zzz") == names
