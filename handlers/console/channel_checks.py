"""「测试连接」 for the console's channel page: one harmless call to WeChat with the stored
credentials, answered as a short Chinese verdict (WeChat's errcode and errmsg included when
it refuses). Nothing is cached or changed: an official account / mini-program asks for a
stable access token in normal mode (never force_refresh, which would cut off the running
workers' token), a WeCom app asks gettoken, a group robot posts one test line to its group,
a pay merchant (APIv3) downloads the platform certificates (the answer's signature checks
the platform key, decrypting them checks the APIv3 key) or (APIv2) queries an order that
does not exist (ORDERNOTEXIST proves the signature).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from handlers.context import Services
from social_mall.channels.service import AccountView
from social_mall.settings import DEMO_APP_ID, WECHAT_API_HOST
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=10)

WECHAT_ERRORS_ZH = {
    -1: "微信系统繁忙，请稍后再试",
    40001: "AppSecret 不对，或 access_token 无效",
    40002: "grant_type 不对",
    40013: "AppID 无效",
    40125: "AppSecret 无效",
    40164: "服务器 IP 不在公众平台的 IP 白名单中",
    41002: "缺少 AppID",
    41004: "缺少 AppSecret",
    45009: "调用太频繁，已超过每日限额",
    48001: "接口未授权（账号类型不支持此接口）",
    89503: "此 IP 调用需要管理员确认",
    40016: "一级菜单个数不对（1–3 个）",
    40017: "菜单类型不对",
    40018: "菜单名称太长",
    40019: "菜单 KEY 太长",
    40020: "菜单链接太长",
    40023: "子菜单个数不对（1–5 个）",
    40025: "子菜单名称太长",
    40027: "子菜单链接太长",
    40055: "菜单链接的域名不对",
    65303: "没有可发布的菜单",
}
WECOM_ERRORS_ZH = {
    -1: "企业微信系统繁忙，请稍后再试",
    40001: "Secret 不对",
    40013: "CorpID 无效",
    40056: "AgentID 无效",
    41002: "缺少 CorpID",
    41004: "缺少 Secret",
    60020: "服务器 IP 不在企业微信的可信 IP 中",
    93000: "群机器人 Webhook Key 无效",
    45009: "发送太频繁，请一分钟后再试",
}
PAY_ERRORS_ZH = {
    "SIGN_ERROR": "签名被拒：商户私钥、证书序列号或商户号不对",
    "MCH_NOT_EXISTS": "商户号不存在",
    "PARAM_ERROR": "参数不对",
    "NO_AUTH": "商户没有此接口权限",
    "response signature": "微信支付的应答验签失败：平台公钥/证书或其编号不对",
    "account": "商户私钥或平台公钥文件无法读取，请重新粘贴",
    "disabled": "商户已停用",
}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str


def wechat_verdict(errcode: int, errmsg: str, zh: dict[int, str]) -> Verdict:
    return Verdict(False, f"微信拒绝：{zh.get(errcode, '未知错误')}（errcode {errcode}：{errmsg[:120]}）")


async def _get_json(svc: Services, method: str, url: str, **kw: Any) -> dict[str, Any]:
    try:
        async with svc.http.request(method, url, timeout=TIMEOUT, **kw) as resp:
            raw = await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("console.check_unreachable", extra={"error": type(exc).__name__})
        return {"errcode": -1, "errmsg": "network error"}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"errcode": -1, "errmsg": "non-JSON answer"}
    return data if isinstance(data, dict) else {"errcode": -1, "errmsg": "unexpected JSON"}


async def check_account(svc: Services, a: AccountView) -> Verdict:
    st = svc.settings
    if a.kind in ("mp", "mini"):
        if not a.app_id or not a.app_secret:
            return Verdict(False, "请先填写 AppID 和 AppSecret")
        if a.app_id == DEMO_APP_ID and st.wechat_api_base.rstrip("/") == WECHAT_API_HOST:
            return Verdict(False, "演示公众号没有连接微信（填写真实的 AppID 和 AppSecret 后再试）")
        body = {"grant_type": "client_credential", "appid": a.app_id, "secret": a.app_secret, "force_refresh": False}
        data = await _get_json(svc, "POST", st.wechat_api_base.rstrip("/") + "/cgi-bin/stable_token",
                               data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        if data.get("errcode") in (0, None) and isinstance(data.get("access_token"), str):
            return Verdict(True, "连接成功：已取得 access_token")
        return wechat_verdict(int(data.get("errcode") or -1), str(data.get("errmsg", "")), WECHAT_ERRORS_ZH)
    if a.kind == "wecom_app":
        if not a.app_id or not a.app_secret:
            return Verdict(False, "请先填写 CorpID 和 Secret")
        data = await _get_json(svc, "GET", st.wecom_api_base.rstrip("/") + "/cgi-bin/gettoken",
                               params={"corpid": a.app_id, "corpsecret": a.app_secret})
        if data.get("errcode") == 0 and isinstance(data.get("access_token"), str):
            return Verdict(True, "连接成功：已取得企业微信 access_token")
        return wechat_verdict(int(data.get("errcode") or -1), str(data.get("errmsg", "")), WECOM_ERRORS_ZH)
    if a.kind == "wecom_bot":
        if not a.webhook_key:
            return Verdict(False, "请先填写群机器人 Webhook Key")
        body = {"msgtype": "text", "text": {"content": f"【连接测试】{a.name or '群机器人'} 已连接商城。"}}
        data = await _get_json(svc, "POST", st.wecom_api_base.rstrip("/") + "/cgi-bin/webhook/send",
                               params={"key": a.webhook_key}, data=json.dumps(body, ensure_ascii=False).encode(),
                               headers={"Content-Type": "application/json; charset=utf-8"})
        if data.get("errcode") == 0:
            return Verdict(True, "连接成功：测试消息已发到群里")
        return wechat_verdict(int(data.get("errcode") or -1), str(data.get("errmsg", "")), WECOM_ERRORS_ZH)
    return Verdict(False, "这种账号不能测试连接")


async def check_merchant(svc: Services, tenant: TenantView, merchant_id: int) -> Verdict:
    """Through the pay module's resolver: the gateway the orders would use."""
    from adapters.wechatpay_v3 import PayRefusedError, PayUnavailableError, UnavailableGateway
    from social_mall.payments.wxpay_v3 import PayDecryptError, decrypt_resource

    resolver = svc.pay_resolver
    if resolver is None:
        return Verdict(False, "未启用微信支付模块")
    resolver.forget(tenant.id)
    await resolver.refresh(tenant)
    gw: Any = resolver.cached(replace(tenant, merchant_id=merchant_id))
    if gw is None:
        return Verdict(False, "商户不存在")
    if isinstance(gw, UnavailableGateway):
        return Verdict(False, PAY_ERRORS_ZH.get(gw.reason, gw.reason))
    try:
        if gw.name == "wxpay_v3":
            _, data = await gw.request("GET", "/v3/certificates")
            certs = data.get("data") if isinstance(data, dict) else None
            if not isinstance(certs, list) or not certs:
                return Verdict(True, "连接成功：签名和应答验签通过（没有平台证书可用来核对 APIv3 密钥）")
            for c in certs:
                enc = c.get("encrypt_certificate") if isinstance(c, dict) else None
                if not isinstance(enc, dict):
                    return Verdict(False, "微信支付的应答格式不对")
                try:
                    decrypt_resource(gw.account.apiv3_key, enc)
                except (PayDecryptError, ValueError):
                    return Verdict(False, "APIv3 密钥不对：平台证书无法解密")
            return Verdict(True, "连接成功：签名、应答验签和 APIv3 密钥都通过")
        status = await gw.query(f"SMCHECK{secrets.token_hex(8)}")
        if status.trade_state == "ORDER_NOT_EXIST":
            return Verdict(True, "连接成功：APIv2 签名通过")
        return Verdict(False, f"微信支付的回答出乎意料：{status.trade_state}")
    except PayRefusedError as exc:
        return Verdict(False, f"微信支付拒绝：{PAY_ERRORS_ZH.get(exc.gateway_code, '未知错误')}"
                              f"（{exc.status} {exc.gateway_code}：{exc.message[:120]}）")
    except PayUnavailableError as exc:
        zh = PAY_ERRORS_ZH.get(exc.reason, "微信支付暂时无法连接")
        return Verdict(False, f"{zh}（{exc.reason}）")
    except Exception as exc:  # noqa: BLE001 - a v2 business error or a malformed answer: a verdict, not a 500
        log.warning("console.merchant_check_failed", extra={"error": type(exc).__name__})
        return Verdict(False, f"微信支付返回错误（{type(exc).__name__}）")
