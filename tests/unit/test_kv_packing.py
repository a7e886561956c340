"""Commands for Redis are packed by hiredis (in C); here is what RESP says they must be, for
whatever the store sends (str and int)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from storage.kv import _pack

_args = st.lists(st.one_of(st.text(), st.integers(min_value=-2**63, max_value=2**63 - 1)), min_size=1, max_size=12)


def resp(args: tuple[str | int, ...]) -> bytes:
    """An array of bulk strings: *count, then $byte-length and the bytes of each argument."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else b"%d" % arg
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


@given(args=_args)
def test_every_command_is_packed_as_resp_says(args: list[str | int]) -> None:
    assert _pack(tuple(args)) == resp(tuple(args))


def test_a_packed_compare_and_set_carries_chinese_text_by_its_byte_length() -> None:
    value = '{"q":"脐橙"}'
    packed = _pack(("EVALSHA", "f" * 40, 1, "sm:conv:1:mp:o_x", "=" + value, value, 1800000))
    assert b"$%d\r\n%s\r\n" % (len(value.encode()), value.encode()) in packed
    assert packed.startswith(b"*7\r\n$7\r\nEVALSHA\r\n$40\r\n")
