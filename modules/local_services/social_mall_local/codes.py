"""Codes a person types into chat or a staff member scans. Pure.

* Ticket codes (券码/取货码): 12 random decimal digits (the issue's format, what a QR
  scanner and a keypad both read): 10^12 ≈ 2^39.9 possibilities, drawn with `secrets`,
  unique per tenant, with an expiry (the ticket's validity), and guessing limited per
  staff member (attempts.py) on top: at 10 failures per 10 minutes a staff account
  would need ~2 × 10^8 years of guessing for an even chance at a given code.
* Bind codes (核销员绑定码): 10 characters of a 31-letter alphabet without look-alikes
  (0/O, 1/I/L): 31^10 ≈ 2^49.5; kept only as SHA-256, one use, expire in 24 hours,
  burned after 5 wrong tries of any member, and limited per member.

The console uses the shop's own `social_mall/codes.py` when the core has one; this tree's
core did not, so the module carries these helpers itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

TICKET_DIGITS = 12
BIND_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BIND_LENGTH = 10
_SEPARATORS = re.compile(r"[\s\-_.·]+")


def new_ticket_code() -> str:
    return f"{secrets.randbelow(10 ** TICKET_DIGITS):0{TICKET_DIGITS}d}"


def ticket_code_text(code: str) -> str:
    """"123456789012" → "1234 5678 9012" (what the member reads out)."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def parse_ticket_code(raw: str) -> str | None:
    """A 12-digit code as typed ("1234 5678-9012", full-width digits) or scanned (the
    code alone, or a link or text that holds exactly one 12-digit run): the digits, or None."""
    text = unicodedata.normalize("NFKC", raw)
    if not text.isascii():
        return None
    compact = _SEPARATORS.sub("", text)
    if compact.isdigit():
        return compact if len(compact) == TICKET_DIGITS else None
    runs = re.findall(r"(?<![0-9])[0-9]{12}(?![0-9])", text)
    return runs[0] if len(runs) == 1 else None


def new_bind_code() -> str:
    return "".join(secrets.choice(BIND_ALPHABET) for _ in range(BIND_LENGTH))


def bind_code_text(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def parse_bind_code(raw: str) -> str | None:
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if len(text) != BIND_LENGTH or not text.isascii() or any(c not in BIND_ALPHABET for c in text):
        return None
    return text


def digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
