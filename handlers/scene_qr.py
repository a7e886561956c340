"""Share QR codes for any parametric scene: what a share card's QR image encodes.

`scene_qr_url(svc, tenant, scene, fallback)` makes the official account's temporary
parametric QR code (QR_STR_SCENE, `scene` ≤ 64 characters, the longest life WeChat gives)
once per scene, keeps its URL in the key-value store (one worker makes it: a lock; others
wait and read it), and answers `fallback` (the share page) when WeChat can't be reached.
Following through the code or scanning it while following arrives as a SUBSCRIBE/SCAN
with that scene, which a flow's `Keyword(scene=prefix)` picks up. `qr_png(data)` draws it
(segno). A module's share card uses both; the scene's meaning is the module's."""

from __future__ import annotations

import io
import logging

import segno

from handlers.context import Services
from adapters.wechat_client import WeChatAPIError
from social_mall.tenants import TenantView
from social_mall.kv import LockTimeoutError

log = logging.getLogger(__name__)

QR_SECONDS = 30 * 24 * 3600           # the longest temporary QR WeChat makes


def qr_png(data: str) -> bytes:
    buf = io.BytesIO()
    segno.make(data, error="m").save(buf, kind="png", scale=8, border=2)
    return buf.getvalue()


async def scene_qr_url(svc: Services, tenant: TenantView, scene: str, fallback: str) -> str:
    """`tenant` as seen through one of its official accounts (`Services.shared_at`) makes
    the QR at that account, kept apart from the primary's: following it follows that one."""
    at = f"{tenant.code}:{tenant.account_id}" if tenant.account_id else tenant.code
    key = f"sceneqr:{at}:{scene}"
    if url := await svc.kv.get(key):
        return url
    try:
        async with svc.kv.lock(f"sceneqr_make:{at}:{scene}", ttl=30.0, wait=30.0):
            if url := await svc.kv.get(key):
                return url
            qr = await svc.wechat(tenant).create_qrcode(scene, QR_SECONDS)
            await svc.kv.set(key, qr["url"], ttl=QR_SECONDS - 3600)
            return qr["url"]
    except (WeChatAPIError, LockTimeoutError) as exc:
        log.warning("scene_qr.failed", extra={"tenant": tenant.code, "error": type(exc).__name__})
        return fallback
