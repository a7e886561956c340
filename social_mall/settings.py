"""Settings from the environment (prefix SOCIAL_MALL_) and an optional .env file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEMO_APP_ID = "wx_demo_app_id"          # the built-in demo official account: no real user reaches it
DEMO_APP_SECRET = "demo_app_secret"

#: DEMO_APP_ID is an app id no real account can have (real ones are "wx" and 16 hex digits).
#: A tenant on it, with WECHAT_API_BASE at WeChat's real host, gets WeChat's message API
#: played by the server itself (handlers/wechat_simulator.py).
WECHAT_API_HOST = "https://api.weixin.qq.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOCIAL_MALL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'social_mall.db'}"
    database_schema: str = ""  # PostgreSQL search_path; empty: the server's default
    # PostgreSQL connections per process: kept, and opened past those under a crowd (closed
    # when returned). `serve --workers N` holds up to N × (both): keep it under the server's
    # max_connections, or put PgBouncer in front (docs/deploy.md).
    database_pool_size: int = Field(10, ge=1, le=500)
    database_max_overflow: int = Field(20, ge=0, le=1000)
    redis_url: str = ""  # empty: the in-process key-value store
    kv_prefix: str = "sm:"
    data_dir: Path = ROOT / "var"

    # The demo tenant's official account (seed-demo copies these onto tenant `demo`).
    wechat_token: SecretStr = SecretStr("social_mall_demo_token")
    wechat_app_id: str = DEMO_APP_ID
    wechat_app_secret: SecretStr = SecretStr(DEMO_APP_SECRET)
    wechat_aes_key: SecretStr = SecretStr("")  # 43 chars enables safe (AES) mode
    wechat_api_base: str = WECHAT_API_HOST
    # The mini-program (JSON API /api/app/v1/): wx.login codes go to /sns/jscode2session.
    mini_app_id: str = ""
    mini_app_secret: SecretStr = SecretStr("")
    app_session_ttl_seconds: int = 7 * 24 * 3600
    wechat_oauth_base: str = "https://open.weixin.qq.com"  # web OAuth authorize page (pay module)
    pay_notify_window_seconds: int = 300  # unpaid this long after the order at the gateway: query it
    pay_sweep_interval_seconds: float = 120.0  # the pay module's active-query sweeper
    payout_sweep_interval_seconds: float = 300.0  # referral payouts under way: ask the gateway again
    # WeChat Pay's API host for merchants added in the console (their key files go under
    # data_dir/pay_keys/<tenant>/; a shared volume when several machines serve)
    pay_api_base: str = "https://api.mch.weixin.qq.com"
    refund_spacing_seconds: float = 60.0  # WeChat Pay: one order's refund requests at least this far apart

    # A live deployment. Refuses what is only for trying the shop out (the sandbox gateway).
    production: bool = False
    # The sandbox pay gateway: its 确认支付 marks an order paid with no money moving, so it is an
    # explicit choice. "auto": on only on the embedded default (SQLite, in-process store) with
    # the built-in demo official account (no real user can reach it) and no production flag;
    # "on": on (refused together with `production`); "off". Either way only the tenants
    # listed in `sandbox_pay_tenants` get it; every other tenant has no payment method until a
    # real pay account is configured (python -m handlers.pay_module).
    sandbox_pay: Literal["auto", "on", "off"] = "auto"
    sandbox_pay_tenants: list[str] = Field(default_factory=lambda: ["demo"])

    # The demo tenant's WeCom group bot (智能机器人, callback /wechat/wecom/demo): copied onto
    # the tenant when it has none yet (then the console's 企业微信 page edits it). The
    # webhook key is the group robot's (…/cgi-bin/webhook/send?key=KEY): announcements go there.
    wecom_token: SecretStr = SecretStr("SocialMallDemoWecom")  # 3-32 letters or digits
    wecom_aes_key: SecretStr = SecretStr("MnQlOKatxKiFzCWOaI5KlKtNt5iasFDVwdTeMRe6dpB")  # 43 characters
    wecom_webhook_key: SecretStr = SecretStr("")
    wecom_bot_name: str = "拼团助手"
    wecom_api_base: str = "https://qyapi.weixin.qq.com"

    # Seed the demo shop with every module's showcase (a group-buy campaign and team, a
    # distributor, coupons, a flash sale, the WeCom bot) and, at the first start on the
    # embedded default, a console administrator whose password is printed once.
    demo_showcase: bool = True

    public_base_url: str = ""  # empty: http://{host}:{port} of `serve`
    secret_key: SecretStr = SecretStr("change-me-in-production")

    order_timeout_minutes: int = 30
    auto_complete_days: int = 10  # shipped orders are confirmed received after this (a tenant may set its own)
    reply_budget_seconds: float = 3.0
    conversation_ttl_seconds: int = 1800
    catalog_cache_seconds: float = 10.0  # in-process catalog reads; other workers see edits this late
    max_body_bytes: int = 64 * 1024      # WeChat messages and pay callbacks
    max_upload_bytes: int = 5 * 1024 * 1024  # console picture uploads
    signature_max_skew_seconds: int = 300

    outbox_interval_seconds: float = 5.0
    sweep_interval_seconds: float = 60.0
    scheduler_enabled: bool = True
    event_loop: str = "asyncio"  # asyncio | uvloop (pip install uvloop)
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (nginx on the same host:
    # ["127.0.0.1"]); empty: the peer's address is the client's
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    metrics_token: SecretStr = SecretStr("")  # /metrics answers only a scrape with this bearer token
    leader_lease_seconds: float = 15.0  # a dead scheduler leader is replaced within this (many workers)

    disabled_modules: list[str] = Field(default_factory=list)
    log_format: str = "auto"  # auto (human on a terminal, json otherwise) | human | kv | json
    log_level: str = "INFO"

    @cached_property
    def is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite") and not self.redis_url

    @model_validator(mode="after")
    def _no_sandbox_in_production(self) -> Settings:
        if self.production and self.sandbox_pay == "on":
            raise ValueError("SOCIAL_MALL_SANDBOX_PAY=on is refused with SOCIAL_MALL_PRODUCTION: the sandbox "
                             "marks orders paid without money")
        return self

    @cached_property
    def sandbox_pay_enabled(self) -> bool:
        """May any tenant (those in `sandbox_pay_tenants`) pay through the sandbox?"""
        if self.production or self.sandbox_pay == "off":
            return False
        if self.sandbox_pay == "on":
            return True
        demo_account = (self.wechat_app_id == DEMO_APP_ID
                        and self.wechat_app_secret.get_secret_value() == DEMO_APP_SECRET)
        return self.is_embedded and demo_account
