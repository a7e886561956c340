"""Referral distribution (分销): distributors, bindings, two-level commissions on an
append-only ledger, and withdrawals paid out through the payment gateway.

`rules` is pure (policies, money arithmetic, transition tables); `service` applies them
through the unit of work; `events` are the module's own domain events."""
