"""The merchant's search synonyms (console 智能搜索 → 同义词): 「仙女裙 = 连衣裙 半身裙」 makes a
search for 仙女裙 also find those words. Services over a unit of work; every change audited."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select

from social_mall.console.errors import InvalidInputError
from social_mall.errors import NotFoundError
from social_mall_intelligence.models import Synonym
from social_mall_intelligence.textindex import normalize
from storage.uow import UnitOfWork

MAX_WORD = 20
MAX_ALTERNATIVES = 10
MAX_SYNONYMS = 500
_SEP = re.compile(r"[\s,，、;；]+")
_BAD = re.compile(r"[\x00-\x1f\x7f=]")


@dataclass(frozen=True)
class SynonymView:
    id: int
    word: str
    alternatives: tuple[str, ...]


def parse_word(raw: object, field: str = "word") -> str:
    word = normalize(unicodedata.normalize("NFC", str(raw or ""))).strip()
    if not word:
        raise InvalidInputError(field, "required")
    if len(word) > MAX_WORD:
        raise InvalidInputError(field, "too_long")
    if _BAD.search(word) or _SEP.search(word):
        raise InvalidInputError(field, "one_word")
    return word


def parse_alternatives(raw: object, word: str) -> tuple[str, ...]:
    alts = tuple(dict.fromkeys(parse_word(a, "alternatives") for a in _SEP.split(str(raw or "").strip()) if a))
    alts = tuple(a for a in alts if a != word)
    if not alts:
        raise InvalidInputError("alternatives", "required")
    if len(alts) > MAX_ALTERNATIVES:
        raise InvalidInputError("alternatives", "too_many")
    return alts


def _view(s: Synonym) -> SynonymView:
    return SynonymView(s.id, s.word, tuple(s.alternatives.split()))


async def list_synonyms(uow: UnitOfWork, tenant: int) -> tuple[SynonymView, ...]:
    rows = await uow.session.scalars(select(Synonym).where(Synonym.tenant_id == tenant).order_by(Synonym.word))
    return tuple(_view(s) for s in rows.all())


async def merchant_synonyms(uow: UnitOfWork, tenant: int) -> Mapping[str, tuple[str, ...]]:
    return {s.word: s.alternatives for s in await list_synonyms(uow, tenant)}


async def save_synonym(uow: UnitOfWork, tenant: int, actor: str, word_raw: object, alternatives_raw: object) -> int:
    """Add the word's line, or replace its alternatives."""
    word = parse_word(word_raw)
    alts = parse_alternatives(alternatives_raw, word)
    row = await uow.session.scalar(select(Synonym).where(Synonym.tenant_id == tenant, Synonym.word == word))
    before: dict[str, object] | None = None
    if row is None:
        count = len(await list_synonyms(uow, tenant))
        if count >= MAX_SYNONYMS:
            raise InvalidInputError("word", "too_many")
        row = Synonym(tenant_id=tenant, word=word, alternatives=" ".join(alts))
        uow.session.add(row)
    else:
        before = {"word": row.word, "alternatives": row.alternatives}
        row.alternatives = " ".join(alts)
    await uow.session.flush()
    uow.audit(tenant, actor, "intel.synonym.save", f"synonym:{row.id}", before=before,
              after={"word": word, "alternatives": " ".join(alts)})
    return row.id


async def delete_synonym(uow: UnitOfWork, tenant: int, actor: str, synonym_id: int) -> None:
    row = await uow.session.scalar(select(Synonym).where(Synonym.tenant_id == tenant, Synonym.id == synonym_id))
    if row is None:
        raise NotFoundError("synonym", synonym_id)
    before: dict[str, object] = {"word": row.word, "alternatives": row.alternatives}
    await uow.session.execute(delete(Synonym).where(Synonym.tenant_id == tenant, Synonym.id == synonym_id))
    uow.audit(tenant, actor, "intel.synonym.delete", f"synonym:{synonym_id}", before=before)
