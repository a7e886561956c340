"""`@value`: the dataclass for values made on every chat message.

To the type checker a `@value` class is a frozen dataclass: `mypy --strict` refuses an
assignment to one of its fields (the suite runs it: tests/unit/test_typing.py). At run
time it is a plain slotted dataclass, compared and hashed by its fields like a frozen one.

Why not `@dataclass(frozen=True)` at run time: a frozen dataclass's `__init__` sets each
field through `object.__setattr__`, several times the cost of a plain attribute store.
The chat path makes a dozen such values per message (the inbound message, the
conversation, the step, the replies…), and freezing them was 8 % of the endpoint's
instructions per message (`bench/endpoint_cpu.py --callgrind --only app-pg`: 986 k with
frozen classes, 908 k with these). Values built once (flow tables, settings, events)
stay `@dataclass(frozen=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def value(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
