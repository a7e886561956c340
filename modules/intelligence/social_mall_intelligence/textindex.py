"""The search index of one tenant's shelf: pure (no I/O), built from the products' texts,
queried in memory.

Terms. Every product's title (counted twice), subtitle, category name and SKU specs are
segmented by jieba's dictionary through rjieba (search mode: 连衣裙 also gives 连衣 / 衣裙; neighbouring words of a
title joined too: 马丁 + 靴), lower-cased, NFKC-folded (full-width Ｌ is L), a size's 码
dropped (L码 is L); each Chinese character of the title, subtitle and category is a term of
its own too (`#裙`): a query word whose characters are all there meets it at a lower
weight, so whatever the old substring search found is still found. bm25s computes the BM25 weight of every (term, product) pair; a query
sums the weights of its terms with numpy.

A query is split at spaces into parts; a part is one *slot* when it is a known word or a
known word's pinyin, else jieba splits it into slots. Each slot may be met by several
terms, best one counts (weights in parentheses):
  the word itself (1.0) · a merchant/built-in synonym (0.9) · a word spelled with the same
  pinyin — the usual typo of a pinyin keyboard, 连衣群 for 连衣裙 (0.85) · a word whose
  full pinyin (lianyiqun) or initials (lyq) the part is (0.9 / 0.8) · a near spelling by
  rapidfuzz among words sharing a character, or among pinyin keys (0.6) · the part's
  characters, all of them (two thirds for an unknown word), at 0.5 of their mean weight.
A part jieba splits (红色连衣裙) is met when all its known words are; a product must meet at
least half the parts; one meeting more words always ranks above one meeting fewer
(「红色 裙子 L码」: red dresses in L first), then by BM25, then by the merchant's order.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

W_EXACT, W_SYNONYM, W_PINYIN, W_HOMOPHONE, W_INITIALS, W_FUZZY, W_CHAR = 1.0, 0.9, 0.9, 0.85, 0.8, 0.6, 0.5
SLOT_BONUS = 1000.0   # per matched slot: more slots met always ranks first
MAX_QUERY = 40        # characters looked at
MAX_PARTS = 6

_CJK = re.compile(r"[\u3400-\u9fff]")
_SIZE = re.compile(r"(?<=[a-z0-9])[码号]")
_SPLIT = re.compile(r"[\s/,，、;；|+（）()【】\[\]·:：]+")
_ASCII_WORD = re.compile(r"^[a-z0-9.%-]+$")
_LETTERS = re.compile(r"^[a-z]+$")


def normalize(text: str) -> str:
    return _SIZE.sub("", unicodedata.normalize("NFKC", text).lower())


# -- the segmenter and pinyin (shared by every tenant's index: loaded once) -------------

class Segmenter:
    """jieba's dictionary and HMM through rjieba (jieba-rs: the same segmentation, measured
    identical on the bench catalog's 2,000 product texts and 205 queries in all three cuts
    used here, 16–27x faster: a document 3.4 µs instead of 92 µs, dictionary load 0.12 s
    instead of 1.15 s; bench/segment.py), with the merchants' words added. jieba's paddle
    mode is never involved."""

    def __init__(self) -> None:
        import rjieba

        self._tk = rjieba.Jieba()
        self._added: set[str] = set()
        self.generation = 0   # moves when a word is added: remembered segmentations are stale

    def add_words(self, words: Iterable[str]) -> None:
        for w in words:
            w = normalize(w).strip()
            if len(w) >= 2 and _CJK.search(w) and w not in self._added:
                self._tk.add_word(w, 2000, None)
                self._added.add(w)
                self.generation += 1

    def doc_tokens(self, text: str) -> list[str]:
        return [t for t in (x.strip() for x in self._tk.cut_for_search(text, True))
                if t and not _SPLIT.fullmatch(t)]

    def query_tokens(self, text: str) -> list[str]:
        return [t for t in (x.strip() for x in self._tk.cut(text, False)) if t and not _SPLIT.fullmatch(t)]

    def title_terms(self, text: str) -> list[str]:
        """Search-mode tokens plus each pair of neighbouring Chinese words joined (up to 4
        characters): 马丁 + 靴 → 马丁靴, a word of the shop the dictionary lacks."""
        words = [t for t in (x.strip() for x in self._tk.cut(text, True)) if t and not _SPLIT.fullmatch(t)]
        pairs = [a + b for a, b in zip(words, words[1:])
                 if _CJK.match(a) and _CJK.match(b) and len(a) + len(b) <= 4 and (len(a) == 1 or len(b) == 1)]
        return self.doc_tokens(text) + pairs


_segmenter: Segmenter | None = None


def segmenter() -> Segmenter:
    global _segmenter
    if _segmenter is None:
        _segmenter = Segmenter()
    return _segmenter


def warm() -> None:
    """Load jieba's dictionary and pypinyin's tables now (a worker's start-up, in a thread:
    `reg.add_warmup`); otherwise the first search pays for them — ~1 s idle, 8 s seen on a
    loaded box, past WeChat's 5-second window."""
    segmenter().query_tokens("红色连衣裙")
    pinyin_of("连衣裙")


@lru_cache(maxsize=200_000)
def pinyin_of(word: str) -> tuple[str, str]:
    """(full pinyin, initials) of a word, without tones: 连衣裙 → (lianyiqun, lyq)."""
    from pypinyin import Style, lazy_pinyin

    full = lazy_pinyin(word, errors="default")
    first = lazy_pinyin(word, style=Style.FIRST_LETTER, errors="default")
    return "".join(full).lower(), "".join(first).lower()


# -- documents and synonyms -----------------------------------------------------------

@dataclass(frozen=True)
class Doc:
    id: int
    title: str
    subtitle: str = ""
    category: str = ""
    specs: tuple[str, ...] = ()
    rank: int = 0   # the merchant's order (lower first): the last tie-break


def parse_synonyms(lines: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """「裙子 = 连衣裙 半身裙」: a search for 裙子 also finds those words (one way; write the
    other line too for both ways). Blank lines and lines without `=` are skipped."""
    out: dict[str, tuple[str, ...]] = {}
    for line in lines:
        if "=" not in line:
            continue
        head, _, rest = line.partition("=")
        word = normalize(head).strip()
        alts = tuple(dict.fromkeys(a for a in (normalize(x).strip() for x in _SPLIT.split(rest)) if a and a != word))
        if word and alts:
            out[word] = tuple(dict.fromkeys((*out.get(word, ()), *alts)))
    return out


#: What every shop gets (merchants add their own in the console).
BUILTIN_SYNONYMS = parse_synonyms("""
裙子 = 连衣裙 半身裙 长裙 短裙 裙
裙 = 连衣裙 半身裙
短袖 = t恤 短袖衫
t恤 = 短袖 体恤
体恤 = t恤
上衣 = t恤 衬衫 卫衣
裤子 = 长裤 牛仔裤 休闲裤 短裤 裤
外套 = 夹克 风衣 大衣 冲锋衣
鞋 = 运动鞋 跑鞋 帆布鞋 皮鞋
鞋子 = 运动鞋 跑鞋 帆布鞋 皮鞋 鞋
球鞋 = 运动鞋 跑鞋
西红柿 = 番茄
番茄 = 西红柿
土豆 = 马铃薯
马铃薯 = 土豆
纸巾 = 抽纸 卷纸
水杯 = 保温杯 杯子 杯
杯子 = 保温杯 水杯 杯
零食 = 坚果 牛肉干 薯片 饼干 巧克力 海苔 瓜子
咖啡 = 挂耳咖啡 咖啡豆
橘子 = 脐橙 橙子 柑橘
橙子 = 脐橙
樱桃 = 车厘子
奇异果 = 猕猴桃
移动电源 = 充电宝
尿不湿 = 纸尿裤
唇膏 = 口红
拖布 = 拖把
毛衣 = 针织衫
毛衫 = 针织衫
羽绒衣 = 羽绒服
曲奇 = 饼干
手机套 = 手机壳
绿茶 = 龙井
卫生纸 = 抽纸 卷纸
跑鞋 = 运动鞋
咖啡粉 = 咖啡
麦片 = 燕麦片
背心裙 = 连衣裙 吊带裙
牙刷 = 电动牙刷
手机壳 = 保护壳
""".splitlines())


# -- the index --------------------------------------------------------------------------

@dataclass
class Index:
    ids: np.ndarray                         # doc position → product id
    ranks: np.ndarray                       # doc position → merchant order
    vocab: dict[str, int]                   # term → column
    data: np.ndarray                        # bm25s CSC: column → docs and weights
    indices: np.ndarray
    indptr: np.ndarray
    synonyms: Mapping[str, tuple[str, ...]]
    by_pinyin: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_initials: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_char: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pinyin_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # first letter → full pinyin keys

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


def _doc_terms(seg: Segmenter, d: Doc) -> list[str]:
    return list(_terms(seg, seg.generation, d.title, d.subtitle, d.category, d.specs))


@lru_cache(maxsize=200_000)
def _terms(seg: Segmenter, generation: int, title: str, sub: str, cat: str, specs: tuple[str, ...]) -> tuple[str, ...]:
    """A product's terms, remembered: a rebuild after one edit segments one product."""
    title, sub, cat = normalize(title), normalize(sub), normalize(cat)
    terms = seg.title_terms(title) * 2 + seg.doc_tokens(sub) + seg.doc_tokens(cat)
    for spec in specs:
        terms.extend(seg.doc_tokens(normalize(spec)))
    terms.extend("#" + c for c in title + sub + cat if _CJK.match(c))
    return tuple(terms)


def build(docs: Sequence[Doc], synonyms: Mapping[str, tuple[str, ...]] = BUILTIN_SYNONYMS,
          words: Iterable[str] = ()) -> Index:
    """The index of these products. `words`: the merchant's dictionary (category names,
    synonym words): jieba keeps them whole."""
    import bm25s

    seg = segmenter()
    seg.add_words((*words, *synonyms, *(a for alts in synonyms.values() for a in alts)))
    corpus = [_doc_terms(seg, d) or ["#"] for d in docs]
    ids = np.array([d.id for d in docs], dtype=np.int64)
    ranks = np.array([d.rank for d in docs], dtype=np.int64)
    if not docs:
        empty = np.zeros(0, dtype=np.float32)
        return Index(ids, ranks, {}, empty, np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64), synonyms)
    bm = bm25s.BM25()
    bm.index(corpus, show_progress=False)
    scores: dict[str, Any] = bm.scores
    vocab: dict[str, int] = dict(bm.vocab_dict)
    index = Index(ids, ranks, vocab, scores["data"], scores["indices"], scores["indptr"], synonyms)
    by_pinyin: dict[str, list[str]] = defaultdict(list)
    by_initials: dict[str, list[str]] = defaultdict(list)
    by_char: dict[str, list[str]] = defaultdict(list)
    for term in vocab:
        if not term or term.startswith("#") or not _CJK.search(term):
            continue
        full, first = pinyin_of(term)
        by_pinyin[full].append(term)
        if len(term) >= 2:
            by_initials[first].append(term)
        for c in set(term):
            if _CJK.match(c):
                by_char[c].append(term)
    index.by_pinyin = {k: tuple(v) for k, v in by_pinyin.items()}
    index.by_initials = {k: tuple(v) for k, v in by_initials.items()}
    index.by_char = {k: tuple(v) for k, v in by_char.items()}
    keys: dict[str, list[str]] = defaultdict(list)
    for k in index.by_pinyin:
        if k:
            keys[k[0]].append(k)
    index.pinyin_keys = {k: tuple(v) for k, v in keys.items()}
    return index


# -- querying -----------------------------------------------------------------------------

Expansion = tuple[str, float]


def _fuzzy_words(index: Index, part: str) -> list[Expansion]:
    from rapidfuzz import fuzz, process

    cands = {w for c in set(part) for w in index.by_char.get(c, ()) if len(w) >= 2 and abs(len(w) - len(part)) <= 1}
    if not cands:
        return []
    found = process.extract(part, list(cands), scorer=fuzz.ratio, score_cutoff=60, limit=3)
    return [(w, W_FUZZY) for w, _, _ in found]


def _fuzzy_pinyin(index: Index, part: str) -> list[Expansion]:
    from rapidfuzz import fuzz, process

    keys = [k for k in index.pinyin_keys.get(part[0], ()) if abs(len(k) - len(part)) <= 2]
    found = process.extract(part, keys, scorer=fuzz.ratio, score_cutoff=80, limit=2)
    return [(w, W_FUZZY) for k, _, _ in found for w in index.by_pinyin[k]]


def _split_pinyin(index: Index, part: str) -> list[str] | None:
    """「hongselianyiqun」 → [hongse, lianyiqun] when every piece is a known word's pinyin."""
    n = len(part)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for i in range(n):
        done = best[i]
        if done is None or len(done) >= MAX_PARTS:
            continue
        for j in range(n, i + 1, -1):
            piece = part[i:j]
            if piece in index.by_pinyin and (best[j] is None or len(best[j] or ()) > len(done) + 1):
                best[j] = [*done, piece]
    return best[n] if best[n] and len(best[n] or ()) > 1 else None


def _with_synonyms(index: Index, word: str, weight: float) -> list[Expansion]:
    out = [(word, weight)] if word in index.vocab else []
    out.extend((s, weight * W_SYNONYM) for s in index.synonyms.get(word, ()) if s in index.vocab)
    return out


def _word_slot(index: Index, part: str) -> list[Expansion] | None:
    """The terms meeting a part taken whole, or None when the part is no known word."""
    out = _with_synonyms(index, part, W_EXACT)
    if part in index.synonyms and not out:
        out = [(s, W_SYNONYM) for s in index.synonyms[part] if s in index.vocab or f"#{s}" in index.vocab]
        out = [(s if s in index.vocab else f"#{s}", w) for s, w in out]
    if _LETTERS.match(part):
        for w in index.by_pinyin.get(part, ()):
            out.extend(_with_synonyms(index, w, W_PINYIN))
        if len(part) >= 2:
            out.extend(_by_frequency(index, index.by_initials.get(part, ()), W_INITIALS))
    elif _CJK.search(part) and not out:
        full, _ = pinyin_of(part)
        for w in index.by_pinyin.get(full, ()):
            out.extend(_with_synonyms(index, w, W_HOMOPHONE))
        if not out and len(full) >= 4:   # 马丁鞋 (madingxie) for 马丁靴 (madingxue)
            out = _fuzzy_pinyin(index, full)
    return out or None


def _by_frequency(index: Index, words: Iterable[str], weight: float) -> list[Expansion]:
    """Initials are ambiguous (jk: 夹克, 机壳): the words more products use weigh more."""
    df = {w: int(index.indptr[index.vocab[w] + 1] - index.indptr[index.vocab[w]]) for w in words}
    top = max(df.values(), default=0)
    return [(w, weight * (n / top) ** 0.5) for w, n in df.items() if n and n * 10 >= top]


@dataclass(frozen=True)
class Slot:
    """One word of the query: the terms that may meet it (best one counts), and its
    characters, all `need` of which in a product's title or subtitle also meet it (at a
    lower weight: the substring search of old is never lost)."""

    words: list[Expansion]
    chars: list[str] = field(default_factory=list)
    need: int = 0
    part: int = 0    # which space-separated part of the query it came from


def _chars(index: Index, tok: str, need: int) -> tuple[list[str], int]:
    return [f"#{c}" for c in tok if _CJK.match(c)], need


def _slots(index: Index, query: str) -> tuple[list[Slot], int]:
    """The query's slots and how many space-separated parts it has."""
    slots: list[Slot] = []
    seg = segmenter()
    parts = [p for p in _SPLIT.split(normalize(query[:MAX_QUERY])) if p]
    if len(parts) > 1 and all(_LETTERS.match(p) for p in parts):   # 「lian yi qun」: one word spaced out
        joined = "".join(parts)
        if _word_slot(index, joined) is not None or _split_pinyin(index, joined):
            parts = [joined]
    parts = parts[:MAX_PARTS]
    for n, raw in enumerate(parts):
        whole = _word_slot(index, raw)
        if whole is not None:
            slots.append(Slot(whole, *_chars(index, raw, len(raw)), part=n))
            continue
        if _LETTERS.match(raw):
            pieces = _split_pinyin(index, raw)
            if pieces:
                slots.extend(Slot(_word_slot(index, p) or [], part=n) for p in pieces)
                continue
            slots.append(Slot(_fuzzy_pinyin(index, raw) if len(raw) >= 4 else [], part=n))
            continue
        if not _CJK.search(raw):
            slots.append(Slot([], part=n))
            continue
        for tok in seg.query_tokens(raw):
            found = _word_slot(index, tok)
            if found is not None:
                slots.append(Slot(found, *_chars(index, tok, len(tok)), part=n))
            elif _CJK.search(tok):   # typo or unknown: near words, or two thirds of its characters
                near = _fuzzy_words(index, tok) if len(tok) >= 3 else []
                slots.append(Slot(near, *_chars(index, tok, -(-2 * len(tok) // 3)), part=n))
            else:
                slots.append(Slot([], part=n))
    return slots, len(parts)


def _column(index: Index, term: str) -> tuple[np.ndarray, np.ndarray] | None:
    col = index.vocab.get(term)
    if col is None:
        return None
    lo, hi = index.indptr[col], index.indptr[col + 1]
    return index.indices[lo:hi], index.data[lo:hi]


def search(index: Index, query: str) -> tuple[np.ndarray, int]:
    """(product ids best first, how many matched) — every match, ranked."""
    empty = np.zeros(0, dtype=np.int64), 0
    if index.size == 0:
        return empty
    slots, n_parts = _slots(index, query)
    if not any(s.words or s.chars for s in slots):
        return empty
    total = np.zeros(index.size, dtype=np.float32)
    part_met: dict[int, np.ndarray] = {}
    for s in slots:
        slot = np.zeros(index.size, dtype=np.float32)
        for term, weight in s.words:
            found = _column(index, term)
            if found is not None:
                _max_into(slot, found[0], found[1] * weight)
        if s.chars:
            bag = np.zeros(index.size, dtype=np.float32)
            met = np.zeros(index.size, dtype=np.int16)
            for term in s.chars:
                found = _column(index, term)
                if found is not None:
                    bag[found[0]] += found[1]
                    met[found[0]] += 1
            bag[met < s.need] = 0
            np.maximum(slot, bag * (W_CHAR / len(s.chars)), out=slot)
        total += slot
        total[slot > 0] += SLOT_BONUS
        if s.words or s.chars:   # a part is met when each of its known words is
            met_here = slot > 0
            part_met[s.part] = part_met[s.part] & met_here if s.part in part_met else met_here
    # at least half the parts met (「不存在的东西」 is one part: 不 alone doesn't meet it)
    met_parts = np.sum(list(part_met.values()), axis=0) if part_met else np.zeros(index.size)
    hit = np.flatnonzero(met_parts >= -(-n_parts // 2))
    if hit.size == 0:
        return empty
    # best score first, then the merchant's order, then the product id
    order = np.lexsort((index.ids[hit], index.ranks[hit], -total[hit]))
    return index.ids[hit[order]], int(hit.size)


def _max_into(slot: np.ndarray, docs: np.ndarray, vals: np.ndarray) -> None:
    """slot[docs] = max(slot[docs], vals): a column holds each doc once, so no repeats."""
    np.maximum(slot[docs], vals, out=vals)
    slot[docs] = vals
