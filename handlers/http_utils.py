"""Small HTTP helpers shared by the endpoints."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from social_mall.parsing import is_storable_text

log = logging.getLogger(__name__)

FORM_CHARSETS = frozenset({"utf-8", "utf8"})
#: what aiohttp raises on a body it can't read as a form: UnicodeDecodeError (a ValueError),
#: a part's unknown charset (LookupError), a missing boundary or a nested multipart
#: (ValueError), a part's broken header line (InvalidHeader, an HttpProcessingError)
MALFORMED_FORM = (ValueError, LookupError, HttpProcessingError)


async def read_capped(request: web.Request, cap: int) -> bytes:
    """The whole body, or 413 as soon as it passes `cap` bytes (declared or streamed)."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=declared)
    if declared is not None and not request.headers.get("Transfer-Encoding"):
        return await request.read()  # HTTP framing holds the body to the declared length
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > cap:
            raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


def bad_form(request: web.Request, why: str, headers: Mapping[str, str] | None = None) -> web.HTTPBadRequest:
    log.info("http.bad_form", extra={"path": request.path, "why": why})
    return web.HTTPBadRequest(text="表单无法读取：须为 UTF-8 文本（不含 NUL）", headers=headers)


def check_text_fields(request: web.Request, fields: Mapping[str, object],
                      headers: Mapping[str, str] | None = None) -> None:
    """400 unless every name and text value can be stored by both backends."""
    for name, value in fields.items():
        if not is_storable_text(name) or (isinstance(value, str) and not is_storable_text(value)):
            raise bad_form(request, "text", headers)


async def read_form(request: web.Request, headers: Mapping[str, str] | None = None
                    ) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The posted form (urlencoded or multipart), or 400: a body that isn't UTF-8, names
    another charset (some, like unicode_escape, make lone surrogates), is malformed
    multipart, or holds NUL. Input from outside never reaches the core as a 500."""
    if request.charset is not None and request.charset.lower() not in FORM_CHARSETS:
        raise bad_form(request, "charset", headers)
    try:
        form = await request.post()
    except MALFORMED_FORM:
        raise bad_form(request, "decode", headers) from None
    check_text_fields(request, form, headers)
    return form


# A wx.login code costs a jscode2session call at WeChat (a quota per mini-program shared by
# every buyer): codes WeChat refused are counted per client address and tenant, and past this
# many in a minute the address is answered 429 without asking WeChat (successes never count).
REFUSED_CODES_PER_MINUTE = 20


def refused_codes_key(app: str, request: web.Request) -> str:
    """The counter of one mini-program's (`app`: tenant, account) refused codes from this address."""
    return f"app:refused_codes:{app}:{request.remote or '-'}"

