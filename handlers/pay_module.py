"""The `pay` module: real WeChat Pay behind the PayGateway port, chosen per tenant.

A tenant with a row in `tenant_pay_accounts` pays through WeChat Pay (APIv3, or APIv2 for
older merchants); a tenant without one has no payment method, unless the settings allow it
the embedded sandbox (`SOCIAL_MALL_SANDBOX_PAY`, `SOCIAL_MALL_SANDBOX_PAY_TENANTS`). Registers the OAuth and
JSAPI/Native pay routes, the refund-notify and APIv2-notify endpoints, the active-query
sweeper and the daily reconciliation.
"""

from __future__ import annotations

from handlers import oauth, pay_h5, pay_jobs, pay_v2, refund_notify
from handlers.context import Services
from adapters.wechatpay_v3 import PayResolver
from social_mall.plugins import Module, Registry


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    svc.pay_resolver = PayResolver(svc)
    reg.add_routes(oauth.routes)
    reg.add_routes(pay_h5.routes)
    reg.add_routes(refund_notify.routes)
    reg.add_routes(pay_v2.routes)

    async def sweep() -> int:
        return await pay_jobs.sweep_pending(svc)

    async def reconcile() -> int:
        return await pay_jobs.reconcile_yesterday(svc)

    reg.add_job("pay.query_sweep", svc.settings.pay_sweep_interval_seconds, sweep)
    reg.add_job("pay.reconcile", 3600.0, reconcile)


MODULE = Module("pay", setup, "Real WeChat Pay (APIv3/APIv2): JSAPI/Native, OAuth, refunds, sweeper, reconciliation")


# -- configuring a tenant's account: python -m handlers.pay_module --tenant demo … ----------

def _cli(argv: list[str] | None = None) -> int:
    """Write (or remove) a tenant's WeChat Pay account. Keys are read from files or the
    environment, never from the command line: SOCIAL_MALL_PAY_APIV3_KEY / SOCIAL_MALL_PAY_APIV2_KEY."""
    import argparse
    import asyncio
    import os
    from datetime import datetime, timezone

    from social_mall.settings import Settings
    from social_mall.tenants import get_tenant
    from storage.db import create_engine, session_factory
    from storage.pay_repos import PayAccountRepo
    from storage.uow import uow_factory

    from adapters.wechatpay_v3 import load_v3_account
    from adapters.wechatpay_v2 import v2_account

    p = argparse.ArgumentParser(prog="python -m handlers.pay_module", description=_cli.__doc__)
    p.add_argument("--tenant", required=True)
    p.add_argument("--remove", action="store_true", help="remove the account (no payment method, or the sandbox where the settings allow it)")
    p.add_argument("--api-version", choices=["v3", "v2"], default="v3")
    p.add_argument("--mch-id", default="")
    p.add_argument("--app-id", default="", help="default: the tenant's official-account app id")
    p.add_argument("--private-key", default="", help="path of apiclient_key.pem")
    p.add_argument("--serial", default="", help="merchant certificate serial number")
    p.add_argument("--platform-mode", choices=["public_key", "certificate"], default="public_key")
    p.add_argument("--platform-key", default="", help="path of pub_key.pem or the platform certificate(s)")
    p.add_argument("--platform-key-id", default="", help="PUB_KEY_ID_… (public-key mode)")
    p.add_argument("--v2-sign-type", choices=["MD5", "HMAC-SHA256"], default="MD5")
    p.add_argument("--base-url", default="https://api.mch.weixin.qq.com")
    args = p.parse_args(argv)
    settings = Settings()

    async def run() -> None:
        engine = create_engine(settings.database_url, schema=settings.database_schema)
        try:
            async with uow_factory(session_factory(engine), {})() as uow:
                tenant = await get_tenant(uow, args.tenant)
                repo = PayAccountRepo(uow.session)
                if args.remove:
                    await repo.delete(tenant.id)
                else:
                    await repo.save(
                        tenant.id, datetime.now(timezone.utc),
                        api_version=args.api_version, mch_id=args.mch_id, app_id=args.app_id or tenant.wechat_app_id,
                        apiv3_key=os.environ.get("SOCIAL_MALL_PAY_APIV3_KEY", ""),
                        apiv2_key=os.environ.get("SOCIAL_MALL_PAY_APIV2_KEY", ""), v2_sign_type=args.v2_sign_type,
                        private_key_path=args.private_key, serial_no=args.serial, platform_mode=args.platform_mode,
                        platform_key_path=args.platform_key, platform_key_id=args.platform_key_id,
                        base_url=args.base_url, enabled=True)
                    row = await repo.for_tenant(tenant.id)
                    assert row is not None
                    if args.api_version == "v3":  # fail now, not at the first payment
                        load_v3_account(row)
                    else:
                        v2_account(row)
                await uow.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"pay account for {args.tenant}: {'removed' if args.remove else args.api_version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
