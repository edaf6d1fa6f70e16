"""Language-aware presets: what training changes when a catalogue is (partly) Chinese.

The presets were tuned on English titles. On Chinese titles their word n-grams memorise whole
titles and their head embeds with an English encoder that cannot read Chinese. Training
measures the share of products in each language (`encoders.language.language_shares`) and
adapts the preset's members; the model's manifest records the shares and the choices.
Every figure behind a constant here was measured on a validation split of zh-retail's
development rows, never on rows a benchmark scores (docs/benchmarks.md, "Chinese catalogues").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .encoders.language import language_shares
from .items import ModelInput, as_texts

# character uni-, bi- and trigrams for Chinese products (validation errors, linear member:
# char 2-5 474, 1-2 386, 1-3 384, 1-4 408; see models/tfidf.py)
CJK_CHAR_NGRAMS: tuple[int, int] = (1, 3)
# weaker regularisation when most products are Chinese: character n-grams are fewer and
# denser than English word + char 2-5 grams (validation errors, char 1-3: C=0.5 410,
# 1.0 378, 2.0 365)
CHINESE_LINEAR_C = 2.0
# from this share of Chinese products on, the multilingual encoder embeds every product;
# below it (and above zero) each product gets its own language's encoder
MOSTLY_CHINESE = 0.9
# the multilingual encoder for the Chinese head: USE-multilingual, chosen out of fold on
# 2,404 zh-retail development rows (head errors: USE 869, E5-small 1,150; McNemar p < 1e-28)
# and 12x faster to embed (160 vs 13 titles/s): `benchmarks/chinese_encoders.py`. Zero-shot
# uses it too (`encoders.AUTO_CHINESE`).
CHINESE_ENCODER = "use"
# `fewshot` starts from category-name prototypes, as zero-shot does: it keeps E5, with which
# its learning curve was measured
CHINESE_FEWSHOT_ENCODER = "e5"
# `fewshot`'s pool memory and group folds read model numbers: Latin letters and digits. A
# Chinese title's rare character n-grams are no identifiers, and its product groups are
# its exact copies. On zh-retail's group development rows (5 draws each at 5/10/20/50 a
# category, `benchmarks/results/pool_memory-zh-retail-*.json`) the memory cost 3.6 / 0.65
# / 0.10 / 0.14 points and the group folds 0.40 / 1.07 / 0.10 / 0.28: a mostly Chinese
# catalogue goes without both
CHINESE_FEWSHOT = {"pool_memory": False, "group_folds": False}
ENGLISH_DEFAULTS = frozenset({"minilm", "minilm-int8", "default", "all-minilm-l6-v2"})


@dataclass(frozen=True)
class LanguagePlan:
    """The catalogue's language shares and the settings chosen for them.

    `tfidf`: extra settings for the `linear` and `knn` members; `linear`/`knn`: settings for
    one of them only; `encoder`: the head's encoder replacing an English default, or None;
    `fewshot_encoder`: the same for `fewshot`; `fewshot`: other settings for it.
    """

    shares: dict[str, float]
    tfidf: dict[str, Any] = field(default_factory=dict)
    linear: dict[str, Any] = field(default_factory=dict)
    knn: dict[str, Any] = field(default_factory=dict)
    encoder: str | None = None
    fewshot_encoder: str | None = None
    fewshot: dict[str, Any] = field(default_factory=dict)

    def adapt(self, kind: str, config: dict[str, Any]) -> dict[str, Any]:
        """`config` (a member's preset settings) with this plan's choices for `kind`."""
        config = dict(config)
        if kind in ("linear", "knn", "fewshot"):
            config.update(self.tfidf)
            config.update(self.linear if kind == "linear" else self.knn if kind == "knn" else {})
        if kind == "fewshot":  # a setting the user chose stays
            config = {**self.fewshot, **config}
        encoder = {"head": self.encoder, "fewshot": self.fewshot_encoder}.get(kind)
        if encoder:
            english = str(config.get("encoder", "minilm"))
            if english.lower() in ENGLISH_DEFAULTS:  # an encoder the user chose stays
                config["encoder"] = encoder.format(english=english)
        return config

    def as_manifest(self) -> dict[str, Any]:
        return {
            "shares": {k: round(v, 4) for k, v in self.shares.items()},
            "tfidf": {k: list(v) if isinstance(v, tuple) else v for k, v in self.tfidf.items()},
            "linear": dict(self.linear),
            "knn": dict(self.knn),
            "head_encoder": self.encoder,
            "fewshot_encoder": self.fewshot_encoder,
            "fewshot": dict(self.fewshot),
        }


def plan_for(texts: Sequence[ModelInput]) -> LanguagePlan:
    """Choose settings for a catalogue from its products' languages.

    Example:
        >>> plan_for(["纸尿裤 L40片", "六个核桃 240ML"]).encoder
        'use'
    """
    shares = language_shares(as_texts(texts))
    chinese = shares.get("zh", 0.0)
    if chinese == 0:
        return LanguagePlan(shares)

    def routed(chinese_encoder: str) -> str:
        if chinese >= MOSTLY_CHINESE:
            return chinese_encoder
        # per product: the English encoder stays for English products
        return f"by-language:zh={chinese_encoder},other={{english}}"

    return LanguagePlan(
        shares,
        tfidf={"cjk_char_ngrams": CJK_CHAR_NGRAMS},
        linear={"C": CHINESE_LINEAR_C} if chinese >= 0.5 else {},
        encoder=routed(CHINESE_ENCODER),
        fewshot_encoder=routed(CHINESE_FEWSHOT_ENCODER),
        fewshot=dict(CHINESE_FEWSHOT) if chinese >= 0.5 else {},
    )
