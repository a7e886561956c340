"""Is an exception an outage of PostgreSQL or Redis (unreachable, restarting, connection cut)
rather than a bug or a refusal? The chat path lets WeChat retry a message that met one: the
message's claim is only a lease, so the retry (5 s later) runs the step once the server is back."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# asyncpg's own names for a server going away (SQLAlchemy wraps them in DBAPIError)
_PG_GONE = frozenset({
    "AdminShutdownError", "CannotConnectNowError", "ConnectionDoesNotExistError", "ConnectionFailureError",
    "CrashShutdownError", "InterfaceError", "InternalClientError", "TooManyConnectionsError",
    "ConnectionRejectionError", "PostgresConnectionError",
})


def is_outage(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError,
                            DisconnectionError, OperationalError, InterfaceError)):
            return True
        if isinstance(cur, DBAPIError) and cur.connection_invalidated:
            return True
        if type(cur).__name__ in _PG_GONE:
            return True
        cur = cur.__cause__ or cur.__context__
    return False
