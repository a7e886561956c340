"""The commerce core of social_mall: pure rules and services over a unit of work.

Never imports aiohttp or wechatpy; channels and HTTP live in handlers/.
"""
