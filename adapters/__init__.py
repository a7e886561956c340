"""Outbound adapters: the clients that speak to the outside on the core's behalf — WeChat's API
(`wechat_client`), WeChat Pay APIv3 and APIv2 (`wechatpay_v3`, `wechatpay_v2`, built per
merchant by `wechatpay_v3.PayResolver`). The composition root (bot.py and the modules' setup)
builds them and hands them to handlers and flows through `Services`; handlers never build one
from storage themselves. Adapters may read their own configuration rows through storage
repositories (a merchant's keys), never business tables."""
