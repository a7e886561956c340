from __future__ import annotations

from flows.engine import Flow

FLOW: Flow | None = None
