"""The OpenAPI 3.0 document of /api/v1/ (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "422": {"$ref": "#/components/responses/Invalid"},
}
NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}
CONFLICT = {"409": {"$ref": "#/components/responses/Conflict"}}
PAGING = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]
ID = [{"name": "id", "in": "path", "required": True,
       "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}]  # anything else: 404


def _list_of(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "page", "per_page", "total"], "properties": {
        "items": {"type": "array", "items": _ref(item)}, "page": {"type": "integer"},
        "per_page": {"type": "integer"}, "total": {"type": "integer"}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_SKU = {"type": "object", "properties": {
    "id": {"type": "integer"}, "spec": {"type": "string"}, "price_fen": {"type": "integer"},
    "stock": {"type": "integer"}, "on_shelf": {"type": "boolean"},
    "cost_fen": {"type": "integer", "nullable": True, "description": "成本价 (fen); null: not entered"}}}
_LINE = {"type": "object", "properties": {
    "sku_id": {"type": "integer"}, "title": {"type": "string"}, "spec": {"type": "string"},
    "price_fen": {"type": "integer"}, "qty": {"type": "integer"}, "line_fen": {"type": "integer"}}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "social_mall admin API", "version": "1.0.0",
             "description": "Money is integer fen. Every call acts within the token's tenant."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/me": {"get": {"operationId": "me", "summary": "The token's admin",
                               "responses": {"200": _json(_ref("Admin")), **ERRORS}}},
        "/api/v1/categories": {
            "get": {"operationId": "listCategories", "responses": {"200": _json(_list_of("Category")), **ERRORS}},
            "post": {"operationId": "createCategory", "requestBody": _body({
                "type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 40}, "sort": {"type": "integer"}}}),
                "responses": {"201": _json(_ref("Created"), "Created"), **ERRORS, **CONFLICT}},
        },
        "/api/v1/products": {
            "get": {"operationId": "listProducts", "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 40}},
                {"name": "category_id", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "on_shelf", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}},
                *PAGING], "responses": {"200": _json(_list_of("Product")), **ERRORS}},
            "post": {"operationId": "createProduct", "requestBody": _body(_ref("NewProduct")),
                     "responses": {"201": _json(_ref("Product"), "Created"), **ERRORS}},
        },
        "/api/v1/products/{id}": {
            "get": {"operationId": "getProduct", "parameters": ID,
                    "responses": {"200": _json(_ref("Product")), **ERRORS, **NOT_FOUND}},
            "patch": {"operationId": "updateProduct", "parameters": ID, "requestBody": _body({
                "type": "object", "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 80},
                    "subtitle": {"type": "string", "maxLength": 120},
                    "description": {"type": "string", "maxLength": 2000},
                    "category_id": {"type": "integer", "minimum": 1}, "sort": {"type": "integer"},
                    "on_shelf": {"type": "boolean"}}}),
                "responses": {"200": _json(_ref("Product")), **ERRORS, **NOT_FOUND}},
        },
        "/api/v1/skus/{id}": {
            "patch": {"operationId": "updateSku", "parameters": ID, "requestBody": _body({
                "type": "object", "properties": {
                    "spec": {"type": "string", "maxLength": 80},
                    "price_fen": {"type": "integer", "minimum": 1},
                    "stock_delta": {"type": "integer", "description": "added to the stock; never below zero"},
                    "on_shelf": {"type": "boolean"},
                    "cost_fen": {"type": "integer", "minimum": 1, "nullable": True,
                                 "description": "成本价 (fen); null clears it; absent: unchanged"}}}),
                "responses": {"200": _json(_SKU), **ERRORS, **NOT_FOUND}},
        },
        "/api/v1/orders": {
            "get": {"operationId": "listOrders", "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                    "pending_payment", "paid", "shipped", "completed", "cancelled", "refund_requested",
                    "refunded"]}},
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 64},
                 "description": "order number, consignee or tracking number"},
                {"name": "member_id", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "since", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "until", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "refund", "in": "query", "schema": {"type": "string", "enum": ["failed"]},
                 "description": "failed: orders whose refund the gateway refused, money not yet returned"},
                *PAGING], "responses": {"200": _json(_list_of("Order")), **ERRORS}},
        },
        "/api/v1/orders/{id}": {
            "get": {"operationId": "getOrder", "parameters": ID,
                    "responses": {"200": _json(_ref("Order")), **ERRORS, **NOT_FOUND}},
        },
        "/api/v1/orders/{id}/ship": {
            "post": {"operationId": "shipOrder", "parameters": ID, "requestBody": _body({
                "type": "object", "required": ["tracking_no"], "properties": {
                    "tracking_no": {"type": "string", "pattern": "^[A-Za-z0-9-]{4,64}$"}}}),
                "responses": {"200": _json(_ref("Order")), **ERRORS, **NOT_FOUND, **CONFLICT}},
        },
        "/api/v1/orders/{id}/refund": {
            "post": {"operationId": "refundOrder", "parameters": ID, "requestBody": _body({
                "type": "object", "required": ["reason"], "properties": {
                    "amount_fen": {"type": "integer", "minimum": 1,
                                   "description": "omit to refund everything still refundable"},
                    "reason": {"type": "string", "minLength": 2, "maxLength": 80}}}),
                "responses": {"202": _json(_ref("Refund"), "Accepted: the gateway is called from the outbox"),
                              **ERRORS, **NOT_FOUND, **CONFLICT}},
        },
        "/api/v1/members": {
            "get": {"operationId": "listMembers", "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 64}}, *PAGING],
                "responses": {"200": _json(_list_of("Member")), **ERRORS}},
        },
        "/api/v1/members/{id}": {
            "get": {"operationId": "getMember", "parameters": ID,
                    "responses": {"200": _json(_ref("Member")), **ERRORS, **NOT_FOUND}},
        },
        "/api/v1/audit": {
            "get": {"operationId": "listAudit", "parameters": [
                {"name": "actor", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                {"name": "action", "in": "query", "schema": {"type": "string", "maxLength": 64},
                 "description": "prefix, e.g. order. or refund."},
                {"name": "subject", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                {"name": "since", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "until", "in": "query", "schema": {"type": "string", "format": "date"}},
                *PAGING], "responses": {"200": _json(_list_of("AuditEntry")), **ERRORS}},
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "a per-admin API token (smk_…)"}},
        "responses": {
            name: {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
            for name, text in (("Unauthorized", "no valid token"), ("Forbidden", "the role lacks the permission"),
                               ("Invalid", "a parameter or field is invalid"), ("NotFound", "no such id here"),
                               ("Conflict", "the state does not allow it"))
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
            "Created": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "Admin": {"type": "object", "properties": {
                "id": {"type": "integer"}, "username": {"type": "string"}, "role": {"type": "string"},
                "tenant_id": {"type": "integer", "nullable": True}}},
            "Category": {"type": "object", "properties": {
                "id": {"type": "integer"}, "name": {"type": "string"}, "sort": {"type": "integer"},
                "products": {"type": "integer"}}},
            "NewProduct": {"type": "object", "required": ["title", "category_id", "skus"], "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 80},
                "subtitle": {"type": "string", "maxLength": 120},
                "description": {"type": "string", "maxLength": 2000},
                "category_id": {"type": "integer", "minimum": 1}, "sort": {"type": "integer"},
                "on_shelf": {"type": "boolean", "default": True},
                "skus": {"type": "array", "minItems": 1, "maxItems": 50, "items": {
                    "type": "object", "required": ["price_fen"], "properties": {
                        "spec": {"type": "string", "maxLength": 80},
                        "price_fen": {"type": "integer", "minimum": 1, "maximum": 1000000000},
                        "stock": {"type": "integer", "minimum": 0, "maximum": 1000000},
                        "cost_fen": {"type": "integer", "minimum": 1, "maximum": 1000000000}}}}}},
            "Product": {"type": "object", "properties": {
                "id": {"type": "integer"}, "title": {"type": "string"}, "subtitle": {"type": "string"},
                "description": {"type": "string"}, "image": {"type": "string"},
                "category_id": {"type": "integer"}, "on_shelf": {"type": "boolean"}, "sort": {"type": "integer"},
                "min_price_fen": {"type": "integer"}, "max_price_fen": {"type": "integer"},
                "stock": {"type": "integer"}, "skus": {"type": "array", "items": _SKU}}},
            "Order": {"type": "object", "properties": {
                "id": {"type": "integer"}, "order_no": {"type": "string"}, "status": {"type": "string"},
                "member_id": {"type": "integer"}, "goods_fen": {"type": "integer"},
                "shipping_fen": {"type": "integer"}, "discount_fen": {"type": "integer"},
                "total_fen": {"type": "integer"}, "paid_fen": {"type": "integer"},
                "refunded_fen": {"type": "integer"}, "ship_name": {"type": "string"},
                "ship_phone": {"type": "string"}, "ship_address": {"type": "string"},
                "tracking_no": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                "paid_at": {"type": "string", "format": "date-time", "nullable": True},
                "lines": {"type": "array", "items": _LINE}}},
            "Refund": {"type": "object", "properties": {
                "out_refund_no": {"type": "string"}, "amount_fen": {"type": "integer"},
                "status": {"type": "string"}, "reason": {"type": "string"}}},
            "Member": {"type": "object", "properties": {
                "id": {"type": "integer"}, "nickname": {"type": "string"}, "entry_source": {"type": "string"},
                "orders": {"type": "integer"}, "paid_fen": {"type": "integer"}}},
            "AuditEntry": {"type": "object", "properties": {
                "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                "actor": {"type": "string"}, "action": {"type": "string"}, "subject": {"type": "string"},
                "before": {"type": "object", "nullable": True}, "after": {"type": "object", "nullable": True}}},
        },
    },
}
