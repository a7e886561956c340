"""Product pictures: streamed from a multipart form with a size cap, checked by their
magic bytes (PNG, JPEG, GIF, WebP only — never SVG or HTML), stored under
settings.data_dir/uploads/<tenant>/<random>.<ext>, served with nosniff."""

from __future__ import annotations

import re
import secrets
import struct
from pathlib import Path

from aiohttp import BodyPartReader, MultipartReader, web

from handlers.console.core import services
from handlers.http_utils import MALFORMED_FORM
from social_mall.console.errors import InvalidInputError

MAX_BYTES = 2 * 1024 * 1024
MAX_SIDE = 8000
TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
_NAME = re.compile(r"^[0-9a-f]{32}\.(png|jpg|gif|webp)$")

routes = web.RouteTableDef()


def sniff(head: bytes) -> str | None:
    """The picture's real type from its first bytes, whatever the browser claimed."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def dimensions_ok(kind: str, data: bytes) -> bool:
    if kind == "png" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return 0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE
    if kind == "gif" and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return 0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE
    return True


def upload_dir(request: web.Request) -> Path:
    return Path(services(request).settings.data_dir) / "uploads"


async def read_image(reader: MultipartReader, field: str = "image") -> tuple[str, bytes]:
    """Read the named file part with a running size cap. Returns (extension, bytes)."""
    try:
        return await _read_image(reader, field)
    except MALFORMED_FORM:  # a part's broken header line, an odd encoding…
        raise InvalidInputError(field, "multipart") from None


async def _read_image(reader: MultipartReader, field: str) -> tuple[str, bytes]:
    while True:
        part = await reader.next()
        if part is None:
            raise InvalidInputError(field, "file_missing")
        if not isinstance(part, BodyPartReader) or part.name != field:
            continue
        data = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            data.extend(chunk)
            if len(data) > MAX_BYTES:
                raise InvalidInputError(field, "file_size")
        if not data:
            raise InvalidInputError(field, "file_missing")
        kind = sniff(bytes(data[:16]))
        if kind is None:
            raise InvalidInputError(field, "file_type")
        if not dimensions_ok(kind, bytes(data[:32])):
            raise InvalidInputError(field, "image_dimensions")
        return kind, bytes(data)


def store_image(request: web.Request, tenant: int, kind: str, data: bytes) -> str:
    """Write the file; returns the public path /uploads/<tenant>/<name>."""
    folder = upload_dir(request) / str(tenant)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{kind}"
    tmp = folder / (name + ".part")
    tmp.write_bytes(data)
    tmp.replace(folder / name)
    return f"/uploads/{tenant}/{name}"


@routes.get(r"/uploads/{tenant:\d{1,12}}/{name}")
async def serve_upload(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    m = _NAME.match(name)
    if not m:
        raise web.HTTPNotFound()
    path = upload_dir(request) / request.match_info["tenant"] / name
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={
        "Content-Type": TYPES[m.group(1)], "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=31536000, immutable",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })
