"""In-memory fuzzy matching of names against the loaded lists.

A token blocking index is built once per load: every name variant (primary name and
aliases) is indexed under each of its tokens' sound keys (:func:`names.phonetic`). A
query only scores the variants that share at least one key with it, so screening does
not run the full scorer over every entry.

The score (0-100) aligns the tokens of the shorter name with the tokens of the longer
one (word order does not matter), each pair scored with rapidfuzz's normalised Indel
similarity (92 at least when both words have the same sound key); a single letter
matches a word with that initial at 90. Extra tokens on either side cost a little
(middle names, patronymics); names split into words differently are also compared with
the spaces removed. A birth-date year that disagrees costs 15 points; one that agrees
adds 5.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from rapidfuzz import fuzz

from pipworks_kyc.screening.names import phonetic, tokens

DEFAULT_THRESHOLD = 88.0
INITIAL_SCORE = 90.0
SOUND_ALIKE_SCORE = 92.0
EXTRA_TOKEN_PENALTY = 0.04
BIRTH_YEAR_MISMATCH = 15.0
BIRTH_YEAR_MATCH = 5.0


@dataclass(frozen=True)
class ListEntry:
    source: str  # "opensanctions", "ofac_sdn"
    entry_id: str
    name: str
    aliases: tuple[str, ...] = ()
    birth_dates: tuple[str, ...] = ()  # ISO dates or years, as the list gives them
    countries: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    schema: str = "Person"


@dataclass(frozen=True)
class Match:
    entry: ListEntry
    matched_name: str
    score: float


@dataclass
class ScreeningIndex:
    entries: list[ListEntry] = field(default_factory=list)
    _variants: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)
    _blocks: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, entries: Iterable[ListEntry]) -> ScreeningIndex:
        index = cls()
        for entry in entries:
            index._add(entry)
        return index

    def _add(self, entry: ListEntry) -> None:
        number = len(self.entries)
        self.entries.append(entry)
        seen: set[tuple[str, ...]] = set()
        for name in (entry.name, *entry.aliases):
            toks = tokens(name)
            if not toks or toks in seen:
                continue
            seen.add(toks)
            variant = len(self._variants)
            self._variants.append((number, name, toks))
            for key in _keys(toks):
                self._blocks[key].append(variant)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def variant_count(self) -> int:
        return len(self._variants)

    def candidates(self, query: Sequence[str]) -> set[int]:
        found: set[int] = set()
        for key in _keys(query):
            found.update(self._blocks.get(key, ()))
        return found

    def search(
        self,
        name: str,
        *,
        birth_date: date | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        limit: int = 10,
    ) -> list[Match]:
        query = tokens(name)
        if not query:
            return []
        best: dict[int, Match] = {}
        for variant in self.candidates(query):
            number, variant_name, toks = self._variants[variant]
            entry = self.entries[number]
            score = name_score(query, toks)
            if score < threshold - BIRTH_YEAR_MATCH:
                continue
            score = _with_birth_date(score, entry.birth_dates, birth_date)
            if score >= threshold and (number not in best or best[number].score < score):
                best[number] = Match(entry, variant_name, round(score, 1))
        return sorted(best.values(), key=lambda m: -m.score)[:limit]


def _keys(toks: Sequence[str]) -> set[str]:
    keys: set[str] = set()
    for t in toks:
        if len(t) >= 2:
            keys.add(phonetic(t))
    return keys


@lru_cache(maxsize=1 << 18)
def _pair(a: str, b: str) -> float:
    if a == b:
        return 100.0
    if len(a) == 1 or len(b) == 1:
        return INITIAL_SCORE if a[0] == b[0] else 0.0
    similarity = fuzz.ratio(a, b)
    if similarity < SOUND_ALIKE_SCORE and phonetic(a) == phonetic(b):
        return SOUND_ALIKE_SCORE
    return similarity


def name_score(query: Sequence[str], candidate: Sequence[str]) -> float:
    """Order-insensitive similarity of two token sequences, 0-100."""
    short, long_ = (query, candidate) if len(query) <= len(candidate) else (candidate, query)
    free = list(long_)
    total = weight = 0.0
    for token in sorted(short, key=len, reverse=True):
        scores = [(_pair(token, other), i) for i, other in enumerate(free)]
        best, at = max(scores) if scores else (0.0, -1)
        w = float(max(len(token), len(free[at]) if at >= 0 else 1))
        if len(token) == 1:
            w = 1.0
        total += best * w
        weight += w
        if at >= 0:
            free.pop(at)
    if weight == 0:
        return 0.0
    if all(len(t) == 1 for t in short):  # initials alone identify nobody
        return 0.0
    extra = len(long_) - len(short)
    aligned = total / weight * (1.0 - EXTRA_TOKEN_PENALTY * extra)
    # Words split or joined differently ("Xiao Ming" / "Xiaoming"), in the same order.
    joined = fuzz.ratio("".join(query), "".join(candidate)) if extra else 0.0
    return max(aligned, joined)


def _with_birth_date(score: float, listed: Sequence[str], birth_date: date | None) -> float:
    if birth_date is None or not listed:
        return score
    years = {text[:4] for text in listed if text[:4].isdigit()}
    if not years:
        return score
    if str(birth_date.year) in years:
        return min(100.0, score + BIRTH_YEAR_MATCH)
    return score - BIRTH_YEAR_MISMATCH
