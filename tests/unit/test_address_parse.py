"""The whole-address parser (social_mall/members/address_parse.py) on addresses as people
paste them: typed, copied from WeChat's address book, from shops, with and without
separators, labels, +86, spaces and dashes, zip codes, in any order."""

from __future__ import annotations

import pytest

from social_mall.members.address_parse import ParsedAddress, from_picker, normalize_mobile, parse_address

SHANGHAI = "上海市浦东新区世纪大道100号"

WHOLE = [
    # typed, in any order, with any separators
    ("张三 13800138000 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三，13800138000，上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三,13800138000,上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三、13800138000、上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三\n13800138000\n上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("13800138000 张三 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("上海市浦东新区世纪大道100号 张三 13800138000", ("张三", "13800138000", SHANGHAI)),
    ("上海市浦东新区世纪大道100号，13800138000，张三", ("张三", "13800138000", SHANGHAI)),
    # no separators at all
    ("张三13800138000上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("上海市浦东新区世纪大道100号张三13800138000", ("张三", "13800138000", SHANGHAI)),
    ("13800138000张三上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三上海市浦东新区世纪大道100号13800138000", ("张三", "13800138000", SHANGHAI)),
    # phones written every way
    ("张三 +86 138 0013 8000 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三 +8613800138000 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三 (+86)138-0013-8000 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三 86-13800138000 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三 138-0013-8000 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("张三 199 1234 5678 上海市浦东新区世纪大道100号", ("张三", "19912345678", SHANGHAI)),
    # full-width digits and punctuation (typed on a phone's Chinese keyboard)
    ("张三，１３８００１３８０００，上海市浦东新区世纪大道１００号", ("张三", "13800138000", SHANGHAI)),
    # names of 2-4 characters, with ·, in Latin letters
    ("欧阳娜娜 13912345678 广东省深圳市南山区科技园1号", ("欧阳娜娜", "13912345678", "广东省深圳市南山区科技园1号")),
    ("王五 13912345678 广东省深圳市南山区科技园1号", ("王五", "13912345678", "广东省深圳市南山区科技园1号")),
    ("司马相如，13912345678，北京市朝阳区建国路1号院2号楼301室",
     ("司马相如", "13912345678", "北京市朝阳区建国路1号院2号楼301室")),
    ("买买提·艾力 13912345678 新疆乌鲁木齐市天山区人民路8号", ("买买提·艾力", "13912345678", "新疆乌鲁木齐市天山区人民路8号")),
    ("Tom 13912345678 上海市徐汇区漕溪北路88号", ("Tom", "13912345678", "上海市徐汇区漕溪北路88号")),
    ("Tom Lee 13912345678 上海市徐汇区漕溪北路88号", ("Tom Lee", "13912345678", "上海市徐汇区漕溪北路88号")),
    ("收货人：Tom Lee\n手机号码：13912345678\n详细地址：上海市徐汇区漕溪北路88号",
     ("Tom Lee", "13912345678", "上海市徐汇区漕溪北路88号")),
    # an address in pieces: province / city / district / street, as shops copy it
    ("张三，13800138000，上海 上海市 浦东新区 世纪大道100号，200120", ("张三", "13800138000", SHANGHAI)),
    ("张三 13800138000 上海上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    ("李四 13700137000 浙江省 杭州市 西湖区 文三路100号", ("李四", "13700137000", "浙江省杭州市西湖区文三路100号")),
    ("李四 13700137000 浙江省杭州市西湖区 文三路100号 3幢2单元501室",
     ("李四", "13700137000", "浙江省杭州市西湖区文三路100号3幢2单元501室")),
    ("四川省成都市武侯区 人民南路四段1号 赵六 15012345678", ("赵六", "15012345678", "四川省成都市武侯区人民南路四段1号")),
    # the name nearest the phone, when a place piece could pass for a name
    ("深圳 南山 科技园1号 张三 13800138000", ("张三", "13800138000", "深圳南山科技园1号")),
    # WeChat's own address copy (收货人 / 手机号码 / 所在地区 / 详细地址)
    ("收货人：张三\n手机号码：13800138000\n所在地区：上海市浦东新区\n详细地址：世纪大道100号",
     ("张三", "13800138000", SHANGHAI)),
    ("收货人: 张三\n手机号码: 138 0013 8000\n所在地区: 上海市 上海市 浦东新区\n详细地址: 世纪大道100号\n邮政编码: 200120",
     ("张三", "13800138000", SHANGHAI)),
    ("收件人：王小明 电话：13912345678 地址：广东省深圳市南山区科技园1号",
     ("王小明", "13912345678", "广东省深圳市南山区科技园1号")),
    ("姓名:王小明,手机:+86 139-1234-5678,详细地址:广东省深圳市南山区科技园1号",
     ("王小明", "13912345678", "广东省深圳市南山区科技园1号")),
    ("联系人：王小明，联系电话：13912345678，收货地址：广东省深圳市南山区科技园1号，邮编：518057",
     ("王小明", "13912345678", "广东省深圳市南山区科技园1号")),
    ("收货人张三 13800138000 上海市浦东新区世纪大道100号", ("张三", "13800138000", SHANGHAI)),
    # a room number on its own stays in the address
    ("张三 13800138000 上海市浦东新区世纪大道100号 1201", ("张三", "13800138000", SHANGHAI + "1201")),
    # zero-width characters some apps put in copied text
    ("张三\u200b 13800138000 上海市浦东新区世纪大道100号\ufeff", ("张三", "13800138000", SHANGHAI)),
]


@pytest.mark.parametrize(("raw", "want"), WHOLE)
def test_a_whole_address_is_read_in_any_order_and_form(raw, want):
    assert parse_address(raw) == ParsedAddress(*want)
    assert parse_address(raw).complete


PARTIAL = [
    # what is missing is named, in the order it is asked for
    ("张三", ("张三", "", ""), ("phone", "detail")),
    ("张三 13800138000", ("张三", "13800138000", ""), ("detail",)),
    ("13800138000 上海市浦东新区世纪大道100号", ("", "13800138000", SHANGHAI), ("name",)),
    ("张三 上海市浦东新区世纪大道100号", ("张三", "", SHANGHAI), ("phone",)),
    # a landline is not a mobile: the phone is asked for
    ("张三 021-12345678 上海市浦东新区世纪大道100号", ("张三", "", SHANGHAI), ("phone",)),
    ("收货人：张三 电话：021-12345678 地址：上海市浦东新区世纪大道100号", ("张三", "", SHANGHAI), ("phone",)),
    # a phone with a digit too many or too few, or not a mobile prefix
    ("张三 138001380001 上海市浦东新区世纪大道100号", ("张三", "", SHANGHAI), ("phone",)),
    ("张三 1380013800 上海市浦东新区世纪大道100号", ("张三", "", SHANGHAI), ("phone",)),
    ("张三 12800138000 上海市浦东新区世纪大道100号", ("张三", "", SHANGHAI), ("phone",)),
    ("王小明 12345 广东省深圳市南山区科技园1号", ("王小明", "", "广东省深圳市南山区科技园1号"), ("phone",)),
    # an address too short to ship to
    ("张三 13800138000 杭州", ("张三", "13800138000", ""), ("detail",)),
    # nothing usable
    ("", ("", "", ""), ("name", "phone", "detail")),
    ("？？？", ("", "", ""), ("name", "phone", "detail")),
]


@pytest.mark.parametrize(("raw", "want", "missing"), PARTIAL)
def test_what_is_not_there_is_named_missing(raw, want, missing):
    got = parse_address(raw)
    assert got == ParsedAddress(*want)
    assert got.missing == missing and not got.complete


def test_an_overlong_message_is_cut_before_reading():
    huge = "张三 13800138000 上海市浦东新区世纪大道100号" + "啊" * 100_000
    got = parse_address(huge)
    assert (got.name, got.phone, got.detail) == ("张三", "13800138000", "")  # the detail is over 100


def test_the_detail_is_at_most_100_characters_and_the_name_20():
    assert parse_address("张三 13800138000 上海市" + "路" * 120).detail == ""
    assert parse_address("收货人：" + "名" * 21 + " 13800138000 上海市浦东新区世纪大道100号").name == ""


# -- WeChat's own address picker (wx.openAddress) -------------------------------------------

PICKED = {"userName": "李四", "telNumber": "13900139000", "provinceName": "上海市", "cityName": "上海市",
          "countryName": "浦东新区", "detailInfo": "世纪大道200号", "postalCode": "200120",
          "nationalCode": "310115", "errMsg": "openAddress:ok"}


def test_the_picked_address_is_read_with_its_province_city_and_district():
    assert from_picker(PICKED) == ParsedAddress("李四", "13900139000", "上海市浦东新区世纪大道200号")
    other = {**PICKED, "provinceName": "广东省", "cityName": "深圳市", "countryName": "", "countyName": "南山区",
             "telNumber": "+86 139-0013-9000"}
    assert from_picker(other) == ParsedAddress("李四", "13900139000", "广东省深圳市南山区世纪大道200号")


@pytest.mark.parametrize(("change", "missing"), [
    ({"userName": ""}, ("name",)),
    ({"userName": "名" * 21}, ("name",)),
    ({"userName": 12}, ("name",)),
    ({"telNumber": "021-12345678"}, ("phone",)),
    ({"telNumber": ["13900139000"]}, ("phone",)),
    ({"detailInfo": ""}, ("detail",)),
    ({"detailInfo": "路" * 101}, ("detail",)),
    ({"detailInfo": None}, ("detail",)),
])
def test_a_picked_field_that_is_missing_or_malformed_is_missing(change, missing):
    assert from_picker({**PICKED, **change}).missing == missing


@pytest.mark.parametrize(("raw", "phone"), [
    ("13900139000", "13900139000"), ("+86 139 0013 9000", "13900139000"), ("(+86)139-0013-9000", "13900139000"),
    ("１３９００１３９０００", "13900139000"), ("1390013900", ""), ("23900139000", ""), ("", ""), ("021-12345678", ""),
])
def test_a_mobile_written_any_way(raw, phone):
    assert normalize_mobile(raw) == phone
