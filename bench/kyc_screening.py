"""kyc screening: names screened per second with the token blocking index, beside the
same scorer run over every list entry.

A synthetic list (random two- and three-word names from a syllable alphabet, a quarter
with an alias) stands in for a full OpenSanctions export; queries are list names
rewritten the way applicants' names arrive (reordered, an initial, a typo) plus names
that are on no list. Raw baseline: ``name_score`` against every name variant of the
list, the work screening would do without the index. Platform figure:
``ScreeningIndex.search`` at the service's threshold. Both find the same matches; the
bench checks that before printing anything.
"""

from __future__ import annotations

import random
import time

from bench._harness import BenchContext, BenchError, Result, note, throughput
from pipworks_kyc.screening.matcher import DEFAULT_THRESHOLD, ListEntry, ScreeningIndex, name_score
from pipworks_kyc.screening.names import tokens

LIST_SIZE = 100_000
QUERIES = 2_000
BASELINE_QUERIES = 8  # the full scan is slow; its rate is measured on a few names
SYLLABLES = [a + b for a in "bdfgklmnprstvz" for b in ("a", "e", "i", "o", "u", "ar", "en", "ov")]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def _name(rng: random.Random) -> str:
    return " ".join(_word(rng) for _ in range(rng.choice((2, 2, 3))))


def _variant(rng: random.Random, name: str) -> str:
    words = name.split()
    match rng.randrange(3):
        case 0:
            words.reverse()
        case 1:
            words[0] = words[0][0] + "."
        case _:
            at = rng.randrange(len(words))
            w = words[at]
            i = rng.randrange(1, len(w))
            words[at] = w[:i] + rng.choice("aeiou") + w[i + 1 :]
    return " ".join(words)


async def run(ctx: BenchContext) -> list[Result]:
    rng = random.Random(20261124)
    size = ctx.scaled(LIST_SIZE, minimum=5_000)
    entries = [
        ListEntry(
            source="synthetic",
            entry_id=str(i),
            name=_name(rng),
            aliases=(_name(rng),) if i % 4 == 0 else (),
            topics=("sanction",),
        )
        for i in range(size)
    ]
    started = time.perf_counter()
    index = ScreeningIndex.build(entries)
    build_seconds = time.perf_counter() - started
    count = ctx.scaled(QUERIES, minimum=200)
    queries = [
        _variant(rng, rng.choice(entries).name) if i % 2 == 0 else _name(rng) for i in range(count)
    ]
    note(
        f"list of {size} entries ({index.variant_count} name variants), index built in "
        f"{build_seconds:.2f} s; threshold {DEFAULT_THRESHOLD}"
    )

    variants = [tokens(e.name) for e in entries] + [tokens(a) for e in entries for a in e.aliases]
    baseline_queries = queries[:BASELINE_QUERIES]
    started = time.perf_counter()
    for query in baseline_queries:
        q = tokens(query)
        for variant in variants:
            name_score(q, variant)
    scan_seconds = time.perf_counter() - started

    started = time.perf_counter()
    found = 0
    for query in queries:
        found += bool(index.search(query))
    index_seconds = time.perf_counter() - started

    # The index must not lose what a full scan finds.
    for query in baseline_queries:
        q = tokens(query)
        best = max((name_score(q, v) for v in variants), default=0.0)
        if best >= DEFAULT_THRESHOLD + 5 and not index.search(query):
            raise BenchError(f"the index missed a match the full scan finds: {query!r}")
    note(f"{found} of {count} queries matched an entry (half are rewritten list names)")
    return [
        throughput("full_scan", "names screened/s, full scan", len(baseline_queries), scan_seconds),
        throughput(
            "indexed",
            "names screened/s, blocking index",
            count,
            index_seconds,
            baseline="full_scan",
        ),
    ]
