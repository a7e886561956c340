"""Conversation state machines: normalized Inbound + state → core calls → Reply values.
No HTTP, no XML, no SQL here."""
