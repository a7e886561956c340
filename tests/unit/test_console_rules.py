"""Console rules without I/O: prices, permissions, CSV cells, charts, picture sniffing."""

import pytest

from handlers.console.charts import bar_chart
from handlers.console.uploads import dimensions_ok, sniff
from handlers.health import solid_png
from social_mall.admins import Role
from social_mall.console import rules
from social_mall.console.errors import InvalidInputError
from social_mall.console.permissions import FINANCE, ROLE_PERMS, Perm, permits


@pytest.mark.parametrize("text,fen", [("39.90", 3990), ("39.9", 3990), ("39", 3900), ("0.01", 1), ("¥8.00", 800)])
def test_prices_parse_to_fen_without_floats(text, fen):
    assert rules.parse_price(text) == fen


@pytest.mark.parametrize("text", ["", "0", "0.00", "-1", "1.999", "1e3", "abc", "1,000", "99999999999"])
def test_bad_prices_are_refused(text):
    with pytest.raises(InvalidInputError):
        rules.parse_price(text)


def test_only_finance_owner_and_admin_hold_finance_permissions():
    for perm in FINANCE:
        holders = {r for r in Role if permits(r, perm)}
        assert holders == {Role.OWNER, Role.ADMIN, Role.FINANCE}, perm
    assert not permits("operator", Perm.ORDERS_REFUND)
    assert permits("operator", Perm.ORDERS_SHIP)
    assert not permits("nobody", Perm.DASHBOARD)
    assert ROLE_PERMS[Role.SUPER] == {Perm.TENANTS, Perm.TOKENS}
    assert permits("operator", "groupbuy.manage", {"groupbuy.manage": frozenset({"operator"})})


def test_csv_cells_never_start_a_formula():
    assert rules.csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert rules.csv_cell("+86 139") == "'+86 139"
    assert rules.csv_cell("王小明") == "王小明"
    assert rules.csv_cell(None) == ""


def test_tracking_numbers_and_tenant_codes():
    assert rules.tracking_no(" SF1234567890 ") == "SF1234567890"
    for bad in ("SF", "SF 123", "<script>", "x" * 65):
        with pytest.raises(InvalidInputError):
            rules.tracking_no(bad)
    assert rules.tenant_code("shop_b") == "shop_b"
    with pytest.raises(InvalidInputError):
        rules.tenant_code("Shop B")


def test_pictures_are_judged_by_their_bytes():
    png = solid_png(10, 10, (0, 0, 0))
    assert sniff(png[:16]) == "png" and dimensions_ok("png", png[:32])
    assert sniff(b"\xff\xd8\xff\xe0" + b"0" * 12) == "jpg"
    assert sniff(b"GIF89a" + b"0" * 10) == "gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff(b"<svg xmlns='http://www.w3.org/2000/svg'>") is None
    assert sniff(b"<html><script>") is None
    assert not dimensions_ok("png", solid_png(9000, 1, (0, 0, 0))[:32])


def test_bar_chart_is_escaped_svg_with_one_bar_per_day():
    svg = bar_chart(["01-01", "<b>"], [3, 0], title="订单 & 成交")
    assert svg.startswith("<svg") and svg.count("<rect") == 2
    assert "&lt;b&gt;" in svg and "订单 &amp; 成交" in svg
    assert "¥12" in bar_chart(["d"], [1234], title="t", fmt="yuan")
