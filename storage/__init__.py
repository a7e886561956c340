"""The only layer that knows SQL and Redis."""
