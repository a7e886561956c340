"""/healthz (database and key-value store status) and generated demo pictures."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

from aiohttp import web
from sqlalchemy import text

from handlers.context import SERVICES, Services
from social_mall.parsing import parse_id

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the worker answers (200 whatever its dependencies say: restarting a worker
    does not bring a database back). The body reports them; `/readyz` gates traffic."""
    svc = request.app[SERVICES]
    db_ok, kv_ok = await _db_ok(svc), await svc.kv.ping()
    body = {
        "status": "ok" if db_ok and kv_ok else "degraded",
        "db": "ok" if db_ok else "down",
        "kv": "ok" if kv_ok else "down",
        "db_backend": svc.engine.dialect.name,
        "kv_backend": type(svc.kv).__name__,
        "modules": svc.registry.modules,
    }
    return web.json_response(body)


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database and the key-value store answer and the schema is at every
    migration head; 503 otherwise (a load balancer sends this worker nothing meanwhile)."""
    svc = request.app[SERVICES]
    db_ok, kv_ok = await _db_ok(svc), await svc.kv.ping()
    missing: list[str] = []
    if db_ok:
        try:
            missing = await svc.pending_migrations()
        except Exception:  # noqa: BLE001 - reported, not raised
            db_ok = False
    ready = db_ok and kv_ok and not missing
    body = {"status": "ready" if ready else "not_ready", "db": "ok" if db_ok else "down",
            "kv": "ok" if kv_ok else "down", "migrations": "head" if db_ok and not missing else "behind",
            "missing_heads": missing}
    return web.json_response(body, status=200 if ready else 503)


async def _db_ok(svc: Services) -> bool:
    try:
        async with svc.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - reported, not raised
        return False
    return True


PALETTE = [(0xF2, 0x6B, 0x3A), (0x3A, 0x9B, 0xF2), (0x4C, 0xAF, 0x50), (0x9C, 0x27, 0xB0), (0xFF, 0xB3, 0x00)]


@lru_cache(maxsize=256)
def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small solid-colour PNG (the demo catalog's pictures), built with zlib alone."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@routes.get(r"/media/products/{pid:\d+}.png")
async def product_picture(request: web.Request) -> web.Response:
    pid = parse_id(request.match_info["pid"])
    if pid is None:
        raise web.HTTPNotFound()
    png = solid_png(360, 200, PALETTE[pid % len(PALETTE)])
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "max-age=86400"})


@lru_cache(maxsize=1)
def favicon_ico() -> bytes:
    """A 32×32 icon in the shop's green: one PNG inside an ICO container."""
    png = solid_png(32, 32, (0x2F, 0x7D, 0x5B))
    header = struct.pack("<HHH", 0, 1, 1)  # reserved, type 1 (icon), one image
    entry = struct.pack("<BBBBHHII", 32, 32, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.Response:
    return web.Response(body=favicon_ico(), content_type="image/x-icon",
                        headers={"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"})
