"""The client's address and scheme behind a trusted proxy (FORWARDED_ALLOW_IPS), and only then."""

from __future__ import annotations

from unittest import mock

from aiohttp.test_utils import make_mocked_request

from bot import client_of


def request_from(peer: str, **headers: str):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (peer, 40000) if name == "peername" else default
    return make_mocked_request("POST", "/wechat/mp/demo", headers=headers, transport=transport)


def test_a_trusted_proxy_gives_the_client_address_and_scheme():
    r = client_of(request_from("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9, 198.51.100.7",
                                              "X-Forwarded-Proto": "https"}), frozenset({"127.0.0.1"}))
    assert (r.remote, r.scheme, r.secure) == ("198.51.100.7", "https", True)  # the hop nginx added


def test_anyone_else_cannot_forge_them():
    forged = request_from("198.51.100.50", **{"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https"})
    r = client_of(forged, frozenset({"127.0.0.1"}))
    assert (r.remote, r.scheme) == ("198.51.100.50", "http")
    assert client_of(forged, frozenset()) is forged
