"""Small HTTP helpers shared by the endpoints."""

from __future__ import annotations

from aiohttp import web


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
