"""Name normalisation for matching: any script to ASCII, no diacritics, no punctuation,
lower case, tokens."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from anyascii import anyascii

_NON_ALNUM = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")
# Honorifics and company forms carry no identity.
_NOISE = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "sir",
        "the",
        "al",
        "el",
        "bin",
        "ibn",
        "ltd",
        "llc",
        "inc",
        "jsc",
        "ooo",
    }
)


def normalize(name: str) -> str:
    """``"Ёлкин, Сергей"`` → ``"yolkin sergey"``: transliterated, folded, de-punctuated."""
    text = unicodedata.normalize("NFKC", name)
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    ascii_text = anyascii(stripped).lower().replace("'", "").replace("`", "")
    ascii_text = _NON_ALNUM.sub(" ", ascii_text.replace("-", " "))
    return _SPACES.sub(" ", ascii_text).strip()


def tokens(name: str) -> tuple[str, ...]:
    words = normalize(name).split()
    kept = tuple(w for w in words if w not in _NOISE)
    return kept or tuple(words)


_PHONETIC_MAP = str.maketrans({"q": "k", "c": "k", "z": "s", "w": "v", "j": "y", "x": "k"})


@lru_cache(maxsize=1 << 18)
def phonetic(token: str) -> str:
    """A coarse sound key: transliteration variants (Aleksandr/Alexander, Yusuf/Jusuf)
    mostly collapse to the same key."""
    t = token.replace("ph", "f").replace("kh", "h").replace("ks", "x").replace("ck", "k")
    t = t.translate(_PHONETIC_MAP)
    head, rest = t[:1], t[1:]
    rest = "".join(ch for ch in rest if ch not in "aeiouyh")
    out = [head]
    for ch in rest:
        if ch != out[-1][-1:]:
            out.append(ch)
    return "".join(out)[:6]
