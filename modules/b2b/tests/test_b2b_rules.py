"""The module's pure rules: the 统一社会信用代码 check digit, which price a company pays
(tiers, % off, sale vs override, validity), and MOQ / case packs with the nearest valid
quantity."""

from datetime import datetime, timedelta, timezone

import pytest

from social_mall_b2b.rules import (
    ListKind, PriceList, QtyProblem, Tier, UsccProblem, check_qty, check_uscc, company_price, nearest_valid,
    parse_tier_lines, tiers_note, uscc_check_char,
)

NOW = datetime(2030, 3, 1, 4, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110108MA01ABCD0" + uscc_check_char("91110108MA01ABCD0"),
                                  "９１３５０１００Ｍ０００１００Ｙ４３", " 91350100-M000100Y43 ", "91350100m000100y43"])
def test_valid_codes_pass_in_any_typed_form(code):
    assert check_uscc(code) == ("91350100M000100Y43", None) or check_uscc(code)[1] is None


@pytest.mark.parametrize("code, problem", [
    ("91350100M000100Y44", UsccProblem.CHECK),       # last character off
    ("91350100M000100Y34", UsccProblem.CHECK),       # two characters swapped
    ("91350100M000100Y4", UsccProblem.LENGTH),
    ("91350100M000100Y433", UsccProblem.LENGTH),
    ("91350100M00010OY43", UsccProblem.CHARS),       # letter O is not in the alphabet
    ("9135A100M000100Y43", UsccProblem.CHARS),       # region code must be digits
    ("", UsccProblem.LENGTH),
    ("９１３５０１００Ｍ０００１００Ｙ４٣", UsccProblem.LENGTH),   # a non-ASCII digit
    ("９１３５０１００Ｍ０００１００Ｙ４²", UsccProblem.CHECK),    # NFKC reads ² as 2: ...Y42
])
def test_wrong_codes_are_refused_with_what_is_wrong(code, problem):
    assert check_uscc(code)[1] == problem


def test_every_single_character_typo_is_caught():
    good = "91350100M000100Y43"
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for i in range(18):
        for ch in alphabet:
            if ch != good[i]:
                typo = good[:i] + ch + good[i + 1:]
                assert check_uscc(typo)[1] is not None, typo


LIST = PriceList(1, "餐饮", ListKind.OVERRIDE, 0, {7: (Tier(1, 2500), Tier(10, 2200), Tier(50, 1990))})


@pytest.mark.parametrize("qty, fen", [(1, 2500), (9, 2500), (10, 2200), (49, 2200), (50, 1990), (500, 1990)])
def test_tier_boundaries(qty, fen):
    assert company_price([LIST], 7, 2990, qty, NOW) == (fen, 1)


def test_sale_list_applies_only_when_cheaper_and_override_always():
    dearer_override = PriceList(2, "高价覆盖", ListKind.OVERRIDE, 0, {7: (Tier(1, 3200),)})
    assert company_price([dearer_override], 7, 2990, 1, NOW) == (3200, 2)      # override: even above retail
    dear_sale = PriceList(3, "促销", ListKind.SALE, 0, {7: (Tier(1, 3000),)})
    assert company_price([dear_sale], 7, 2990, 1, NOW) is None                 # not below retail: no effect
    cheap_sale = PriceList(4, "促销", ListKind.SALE, 0, {7: (Tier(1, 2400),)})
    assert company_price([LIST, cheap_sale], 7, 2990, 1, NOW) == (2400, 4)
    assert company_price([LIST, cheap_sale], 7, 2990, 10, NOW) == (2200, 1)   # the tier beats the sale
    # two groups' override lists: the best of them, never none
    assert company_price([dearer_override, LIST], 7, 2990, 10, NOW) == (2200, 1)


def test_percent_off_retail_and_validity_dates():
    pct = PriceList(5, "85折", ListKind.OVERRIDE, 1500, {}, NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert company_price([pct], 9, 2990, 1, NOW) == (2541, 5)                 # 2990 × 0.85 = 2541.5 → 2541
    assert company_price([pct], 9, 2990, 1, NOW + timedelta(days=1)) is None  # ended
    assert company_price([pct], 9, 2990, 1, NOW - timedelta(days=2)) is None  # not started
    off = PriceList(6, "停用", ListKind.OVERRIDE, 1500, {}, active=False)
    assert company_price([off], 9, 2990, 1, NOW) is None


@pytest.mark.parametrize("qty, moq, case, problem, nearest", [
    (5, 12, 12, QtyProblem.BELOW_MINIMUM, 12),
    (11, 12, 1, QtyProblem.BELOW_MINIMUM, 12),
    (25, 12, 12, QtyProblem.NOT_CASE_MULTIPLE, 24),
    (30, 12, 12, QtyProblem.NOT_CASE_MULTIPLE, 36),   # a tie: the larger
    (31, 12, 12, QtyProblem.NOT_CASE_MULTIPLE, 36),
    (13, 10, 6, QtyProblem.NOT_CASE_MULTIPLE, 12),
    (7, 10, 6, QtyProblem.BELOW_MINIMUM, 12),         # the least case multiple at or above the minimum
])
def test_moq_and_case_refusals_name_the_nearest_valid_quantity(qty, moq, case, problem, nearest):
    r = check_qty(qty, moq, case)
    assert r is not None and (r.problem, r.nearest) == (problem, nearest)
    assert check_qty(r.nearest, moq, case) is None


@pytest.mark.parametrize("qty", [12, 24, 36, 120])
def test_valid_quantities_pass(qty):
    assert check_qty(qty, 12, 12) is None
    assert nearest_valid(qty, 12, 12) == qty


def test_tier_lines_and_card_note():
    assert parse_tier_lines("7 1 25\n7 10 22.00\n\n7，50，19.9") == ([(7, 1, 2500), (7, 10, 2200), (7, 50, 1990)], None)
    assert parse_tier_lines("7 1 25\n7 1 24") == ([], 2)            # a repeated tier
    assert parse_tier_lines("7 x 25") == ([], 1)
    assert parse_tier_lines("7 1 -3") == ([], 1)
    assert parse_tier_lines("7 1 ٣") == ([], 1)                      # a digit, but not ASCII
    assert tiers_note([LIST], 7, 2990, NOW, 12, 12) == "50件起 ¥19.90，起订 12 件，按 12 件整箱订"


def test_vat_inside_a_tax_inclusive_amount_rounds_to_the_fen_and_sums_per_rate():
    from social_mall_b2b.vat import breakdown, tax_in

    assert tax_in(52800, 1300) == 6074          # 528.00 × 13 / 113 = 60.743…
    assert tax_in(11300, 1300) == 1300 and tax_in(100, 600) == 6 and tax_in(0, 1300) == 0
    assert tax_in(53, 1300) == 6                # 0.53 × 13 / 113 = 0.0609… → 0.06
    lines = breakdown([(52800, 1300), (10000, 900), (5000, 1300), (700, 0)])
    assert [(v.rate_bp, v.base_fen, v.tax_fen, v.percent) for v in lines] == [
        (1300, 57800, 6650, "13%"), (900, 10000, 826, "9%")]
