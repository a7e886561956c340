"""The OpenAPI 3.0 document of the member API /api/app/v1/ (served at /api/app/v1/openapi.json)."""

from __future__ import annotations

from typing import Any


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _obj(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


INT = {"type": "integer"}
STR = {"type": "string"}
OBJ = {"type": "object"}
ERR = {"$ref": "#/components/responses/Error"}
ERRORS = {"401": ERR, "422": ERR, "429": ERR}
NOT_FOUND = {"404": ERR}
CONFLICT = {"409": ERR}
TENANT = {"name": "tenant", "in": "path", "required": True, "schema": STR}
ACCOUNT = {"name": "account", "in": "path", "required": True, "schema": STR,
           "description": "the code of one of the tenant's mini-program channel accounts"}
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
SKU_ID = {"name": "sku_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
LIST = _obj(["items"], items={"type": "array", "items": OBJ}, page=INT, per_page=INT, total=INT)
P = "/api/app/v1/{tenant}"


def _op(op: str, summary: str, ok: dict[str, Any] | None = None, *, status: str = "200",
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
        errors: dict[str, Any] | None = None, public: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op, "summary": summary, "parameters": [TENANT, *(params or [])],
                           "responses": {status: _json(ok or OBJ), **ERRORS, **(errors or {})}}
    if body is not None:
        out["requestBody"] = _body(body)
    if public:
        out["security"] = []
    return out


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "social_mall member API (mini-program / app)", "version": "1.0.0",
             "description": "Money is integer fen. A session token acts as one member of one tenant."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        f"{P}/session": {"post": _op(
            "createSession", "wx.login code → session token (code2session at WeChat)",
            _obj(["token", "expires_in", "member_id"], token=STR, expires_in=INT, member_id=INT),
            body=_obj(["code"], code=STR), errors={**CONFLICT, "502": ERR}, public=True)},
        f"{P}/categories": {"get": _op("listCategories", "Categories", _obj(["items"], items={
            "type": "array", "items": OBJ}))},
        f"{P}/products": {"get": _op("listProducts", "Products: list or search", LIST, params=[
            {"name": "category_id", "in": "query", "schema": INT}, {"name": "q", "in": "query", "schema": STR},
            {"name": "page", "in": "query", "schema": INT},
            {"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": 50}}])},
        f"{P}/products/{{id}}": {"get": _op("getProduct", "Product with SKUs", params=[ID], errors=NOT_FOUND)},
        f"{P}/cart": {"get": _op("getCart", "The member's cart")},
        f"{P}/cart/items": {"post": _op("addToCart", "Add a SKU", body=_obj(["sku_id", "qty"], sku_id=INT, qty=INT),
                                        errors={**NOT_FOUND, **CONFLICT})},
        f"{P}/cart/items/{{sku_id}}": {
            "put": _op("setCartQty", "Change a line (0 removes)", body=_obj(["qty"], qty=INT), params=[SKU_ID],
                       errors={**NOT_FOUND, **CONFLICT}),
            "delete": _op("removeFromCart", "Remove a line", params=[SKU_ID], errors=NOT_FOUND)},
        f"{P}/addresses": {
            "get": _op("listAddresses", "Addresses", _obj(["items"], items={"type": "array", "items": OBJ})),
            "post": _op("addAddress", "Add an address (it becomes the default)", status="201",
                        body=_obj(["name", "phone", "detail"], name=STR, phone=STR, detail=STR))},
        f"{P}/checkout/quote": {"post": _op(
            "quoteCheckout", "Price the cart (or items) through the promotions pipeline",
            _obj(["goods_fen", "shipping_fen", "discount_fen", "total_fen", "coupon_id", "points_used"],
                 goods_fen=INT, shipping_fen=INT, discount_fen=INT, total_fen=INT, coupon_id=INT, points_used=INT,
                 breakdown=OBJ),
            body={"type": "object", "properties": {"coupon_id": INT, "points": INT, "items": {
                "type": "array", "items": _obj(["sku_id", "qty"], sku_id=INT, qty=INT)}}},
            errors={**NOT_FOUND, **CONFLICT})},
        f"{P}/orders": {
            "get": _op("listOrders", "The member's orders", LIST, params=[{"name": "page", "in": "query",
                                                                             "schema": INT}]),
            "post": _op("placeOrder", "Place the cart (or items); the same Idempotency-Key answers the same order",
                        status="201", params=[{"name": "Idempotency-Key", "in": "header", "required": True,
                                               "schema": {"type": "string", "maxLength": 80}}],
                        body=_obj(["address_id"], address_id=INT, expect_total_fen=INT, coupon_id=INT, points=INT, items={
                            "type": "array", "items": _obj(["sku_id", "qty"], sku_id=INT, qty=INT)}),
                        errors={**NOT_FOUND, **CONFLICT})},
        f"{P}/orders/{{id}}": {"get": _op("getOrder", "One of the member's orders", params=[ID], errors=NOT_FOUND)},
        f"{P}/orders/{{id}}/cancel": {"post": _op("cancelOrder", "Cancel an unpaid order", params=[ID],
                                                  errors={**NOT_FOUND, **CONFLICT})},
        f"{P}/orders/{{id}}/pay": {"post": _op(
            "payOrder", "wx.requestPayment parameters ({params}), or {sandbox, confirm} on the sandbox",
            params=[ID], errors={**NOT_FOUND, **CONFLICT, "502": ERR})},
        f"{P}/orders/{{id}}/sandbox-pay": {"post": _op(
            "sandboxPay", "Sandbox only: the platform sends its signed pay notify", params=[ID],
            errors={**NOT_FOUND, **CONFLICT, "502": ERR})},
        f"{P}/me": {"get": _op("memberCenter", "Points, coupons and level")},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {"Error": _json(_obj(["error"], error=_obj(["code", "message"], code=STR, message=STR,
                                                                  field=STR)), "Error")},
    },
}


def add_paths(paths: dict[str, dict[str, Any]]) -> None:
    """Document `paths` (written on the tenant-level prefix `/api/app/v1/{tenant}`) on both
    prefixes: as they are (the tenant's default mini-program) and with `{account}`."""
    for path, ops in paths.items():
        OPENAPI["paths"][path] = ops
        explicit = {m: {**op, "operationId": op["operationId"] + "ForAccount",
                        "parameters": [TENANT, ACCOUNT, *op["parameters"][1:]]} for m, op in ops.items()}
        OPENAPI["paths"][path.replace(P, P + "/{account}", 1)] = explicit


_core, OPENAPI["paths"] = OPENAPI["paths"], {}
add_paths(_core)
PAGE = [{"name": "page", "in": "query", "schema": INT}]
SEAT = _obj(["sku_id", "qty", "address_id"], sku_id=INT, qty=INT, address_id=INT)
IDEM = {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string", "maxLength": 80}}
JOINED = _obj(["team", "order"], team=OBJ, seat=OBJ, order=OBJ, share_url=STR)
add_paths({  # the group-buy module's (handlers/api_app_social.py)
    f"{P}/groupbuy/campaigns": {"get": _op("listGroupbuyCampaigns", "Live group-buy campaigns", _obj(
        ["items"], items={"type": "array", "items": OBJ}))},
    f"{P}/groupbuy/campaigns/{{id}}": {"get": _op(
        "getGroupbuyCampaign", "A live campaign and its teams still forming", _obj(["campaign", "teams"],
                                                                                 campaign=OBJ, teams={"type": "array", "items": OBJ}),
        params=[ID], errors={**NOT_FOUND, **CONFLICT})},
    f"{P}/groupbuy/campaigns/{{id}}/teams": {"post": _op(
        "openGroupbuyTeam", "Open a team with the first seat: its order (pay it with /orders/{id}/pay); "
        "the same Idempotency-Key answers the same team", JOINED, status="201", body=SEAT,
        params=[ID, IDEM], errors={**NOT_FOUND, **CONFLICT})},
    f"{P}/groupbuy/teams/{{id}}": {"get": _op(
        "getGroupbuyTeam", "A team: seats left, status, expiry, whether the member is in it", params=[ID],
        errors=NOT_FOUND)},
    f"{P}/groupbuy/teams/{{id}}/join": {"post": _op(
        "joinGroupbuyTeam", "Take a seat: its order (200 with the same seat while it is unpaid)", JOINED,
        status="201", body=SEAT, params=[ID], errors={**NOT_FOUND, **CONFLICT})},
})
add_paths({  # the referral module's
    f"{P}/referral/me": {"get": _op("getDistributor", "Distributor status; approved: balances, bound members, "
                                                      "recent commissions, share link")},
    f"{P}/referral/apply": {"post": _op("applyDistributor", "Apply to be a distributor", errors=CONFLICT)},
    f"{P}/referral/share": {"get": _op("getShareLink", "Share link and QR image", _obj(
        ["code", "link", "qr"], code=STR, link=STR, qr=STR), errors=CONFLICT)},
    f"{P}/referral/commissions": {"get": _op("listCommissions", "Commissions ledger, newest first", LIST,
                                             params=PAGE, errors=CONFLICT)},
    f"{P}/referral/withdrawals": {"post": _op(
        "requestWithdrawal", "Hold amount_fen for a payout awaiting approval; the same Idempotency-Key holds once",
        status="201", body=_obj(["amount_fen"], amount_fen=INT), params=[IDEM], errors=CONFLICT)},
})
