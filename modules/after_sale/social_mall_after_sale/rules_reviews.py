"""Review rules: stars, the text's length, the sensitive-word mask, the card's average.
Pure: no I/O."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MAX_TEXT = 300
MAX_PHOTOS = 3
MAX_WORD = 40
MAX_WORDS = 500


def stars_ok(n: int) -> bool:
    return 1 <= n <= 5


def clean_words(raw: str) -> list[str]:
    """The merchant's list as typed (one a line, or separated by commas): trimmed,
    NFKC-folded, unique, without blanks; a word longer than MAX_WORD is refused (None)."""
    out: list[str] = []
    for part in raw.replace("，", "\n").replace(",", "\n").splitlines():
        w = unicodedata.normalize("NFKC", part).strip()
        if w and w not in out:
            out.append(w)
    return out


def mask(text: str, words: Iterable[str]) -> str:
    """Every listed word in `text` becomes as many ＊ as it has characters, found in the
    NFKC-folded, lower-cased text (ＡＢＣ and abc alike) while the rest keeps what the
    member typed; the longest words first, so a word inside another leaves nothing."""
    folded = [unicodedata.normalize("NFKC", ch).lower() for ch in text]
    if any(len(f) != 1 for f in folded):   # a character folding into several: mask the folded text
        text = unicodedata.normalize("NFKC", text)
        folded = list(text.lower())
    lower = "".join(folded)
    hits = [False] * len(text)
    for w in sorted({unicodedata.normalize("NFKC", w).lower() for w in words if w}, key=len, reverse=True):
        start = lower.find(w)
        while start >= 0:
            for i in range(start, start + len(w)):
                hits[i] = True
            start = lower.find(w, start + len(w))
    return "".join("＊" if hit else ch for ch, hit in zip(text, hits, strict=True))


def avg_tenths(total_stars: int, count: int) -> int:
    """The average × 10, rounded half up, in integers: 9 stars over 2 reviews → 45 (4.5)."""
    return (total_stars * 20 + count) // (2 * count) if count else 0


def stars_text(n: int) -> str:
    return "★" * n + "☆" * (5 - n)
