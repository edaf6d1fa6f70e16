"""Which language a product text is in, as far as choosing an encoder needs: by script."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= code <= 0x4DBF  # extension A
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= code <= 0x2A6DF  # extension B
    )


def detect_language(text: str) -> str:
    """'zh' when Han characters make up at least 20% of the letters, else 'en'.

    Mixed titles ("苹果 iPhone 15") are common in Chinese catalogues; a low threshold keeps
    them on the multilingual encoder, which handles the Latin part too.

    Example:
        >>> detect_language("苹果 iPhone 15 Pro Max 256GB 手机")
        'zh'
    """
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    han = sum(1 for ch in letters if _is_cjk(ch))
    return "zh" if han / len(letters) >= 0.2 else "en"


def language_shares(texts: Iterable[str]) -> dict[str, float]:
    """The share of texts in each language `detect_language` tells apart (sums to 1).

    Example:
        >>> language_shares(["纸尿裤 L40片", "red shirt"])
        {'en': 0.5, 'zh': 0.5}
    """
    counts = Counter(detect_language(t) for t in texts)
    total = sum(counts.values()) or 1
    return {lang: counts.get(lang, 0) / total for lang in ("en", "zh")}
