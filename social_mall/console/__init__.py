"""The admin console's core: who may do what (roles → permissions), logging in with
rate limits and lockout, sessions in the key-value store, API tokens hashed at rest, and
the admin-side services over catalog, orders, members, the audit log, tenants and exports.

No HTTP here: handlers/console and handlers/api_v1 are the edge.
"""
