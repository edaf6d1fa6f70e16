"""Zero-shot classification into any taxonomy: no labelled data, only category names.

Each category gets a prototype: the mean embedding of its name and its full path (templates
are configurable), in the product text's language where the taxonomy has it. A product is
scored against every node; a softmax over each group of siblings gives
p(node | parent, product), and paths are decoded top-down with a beam over levels. Optionally
the prototypes adapt to the catalogue being classified (no labels used): products confidently
assigned to a category pull its prototype towards them, which repairs category names that
are poor descriptions of the products filed under them.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .encoders import Encoder, EncoderSet, Role, detect_language, normalize
from .errors import ConfigError
from .hierarchy import TreeIndex
from .predictions import Predictions
from .taxonomy import PATH_SEPARATOR, Taxonomy

logger = logging.getLogger(__name__)

_CHUNK = 1024  # products scored at once while adapting


@dataclass(frozen=True)
class ZeroShotConfig:
    """How categories are described and paths decoded.

    Args:
        templates: category texts, formatted with {name}, {path} and {parent}; a node's
            prototype is the mean of their embeddings.
        other_language_templates: the same for category names in languages other than
            English. Names only by default: the multilingual encoder embeds ~50 long Chinese
            paths a second on 2 cores, which would make a cold run over Shopify's 10k
            categories take minutes; the subtree centroids still give internal nodes context.
        beam_width: paths kept per level while decoding; None scores every path.
        level_temperature: softmax temperature over sibling similarities, in units of the
            product's similarity spread (similarities are standardised per product, which
            makes one setting fit encoders with very different cosine ranges).
        path_temperature: softmax temperature turning path scores into confidences.
        leaves_only: a prediction must end at a leaf category.
        adapt: adapt prototypes to the input catalogue (transductive, label-free).
        adapt_weight: how far a prototype moves towards its products' centroid (0..1).
        adapt_iterations: rounds of assign-then-update.
        adapt_sample: at most this many products are used to adapt.
        subtree_weight: share of an internal node's prototype taken from the centroid of the
            leaves under it (its own name often says little: "Accessories").
        flat_weight: weight of a node's own similarity added to its top-down path score.
        hubness: also subtract each node's mean similarity over the adapted catalogue.
            Helps flat label sets with a few balanced classes; hurts long-tailed trees.
    """

    templates: tuple[str, ...] = ("{name}", "{path}")
    other_language_templates: tuple[str, ...] = ("{name}",)
    beam_width: int | None = 20
    level_temperature: float = 0.35
    path_temperature: float = 2.0
    leaves_only: bool = True
    adapt: bool = True
    adapt_weight: float = 0.3
    adapt_iterations: int = 1
    adapt_sample: int = 20000
    subtree_weight: float = 1.0
    flat_weight: float = 1.0
    hubness: bool = False

    def __post_init__(self) -> None:
        if not self.templates or not self.other_language_templates:
            raise ConfigError("templates: at least one category template is needed")
        for template in (*self.templates, *self.other_language_templates):
            try:
                template.format(name="x", path="x", parent="x")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"template {template!r} is invalid ({exc}); use {{name}}, {{path}}, {{parent}}"
                ) from None
        if self.beam_width is not None and self.beam_width < 1:
            raise ConfigError(f"beam_width must be >= 1 or None, got {self.beam_width}")
        for field_name in ("level_temperature", "path_temperature"):
            if getattr(self, field_name) <= 0:
                raise ConfigError(f"{field_name} must be > 0, got {getattr(self, field_name)}")
        if self.adapt_iterations < 1:
            raise ConfigError(f"adapt_iterations must be >= 1, got {self.adapt_iterations}")
        if not 0 <= self.adapt_weight <= 1:
            raise ConfigError(f"adapt_weight must be in [0, 1], got {self.adapt_weight}")


class ZeroShotClassifier:
    """Classify product texts into `taxonomy` with frozen encoders and no labels.

    Example:
        >>> clf = ZeroShotClassifier(taxonomy, build_encoder_set("auto"))   # doctest: +SKIP
        >>> clf.predict(["苹果 iPhone 15 Pro Max 256GB 手机"])[0].best.path[0]   # doctest: +SKIP
        'Electronics'
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        encoders: EncoderSet,
        config: ZeroShotConfig | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.encoders = encoders
        self.config = config or ZeroShotConfig()
        self.tree = TreeIndex(taxonomy, leaves_only=self.config.leaves_only)
        # the categories' own prototypes, computed once and shared by adapted copies
        self._prototypes: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()
        self._adapted: dict[tuple[str, str], np.ndarray] = {}
        self._bias: dict[tuple[str, str], np.ndarray] = {}

    # -- category side --------------------------------------------------------------------
    def _category_language(self, encoder: Encoder, language: str) -> str:
        if language in self.taxonomy.languages and encoder.handles(language):
            return language
        return "en"

    def category_texts(self, language: str = "en") -> list[list[str]]:
        """The texts describing each node (tree order), one list per template."""
        texts = []
        templates = (
            self.config.templates if language == "en" else self.config.other_language_templates
        )
        for template in templates:
            column = []
            for cid in self.tree.ids:
                path = self.taxonomy.localized_path(cid, language)
                column.append(
                    template.format(
                        name=path[-1],
                        path=PATH_SEPARATOR.join(path),
                        parent=path[-2] if len(path) > 1 else "",
                    )
                )
            texts.append(column)
        return texts

    def prototypes(self, encoder: Encoder, language: str) -> np.ndarray:
        """(n_nodes, dim) unit vectors for the nodes, adapted ones when available."""
        key = (encoder.name, self._category_language(encoder, language))
        if key in self._adapted:
            return self._adapted[key]
        if key not in self._prototypes:
            with self._lock:  # many threads may ask first: embed the categories once
                if key not in self._prototypes:
                    logger.info("embedding %d categories with %s (%s)", len(self.tree), *key)
                    per_template = [
                        encoder.encode(texts, role=Role.CATEGORY, batch_size=128)
                        for texts in self.category_texts(key[1])
                    ]
                    own = normalize(np.mean(per_template, axis=0))
                    self._prototypes[key] = self._with_subtree(own)
        return self._prototypes[key]

    def _with_subtree(self, own: np.ndarray) -> np.ndarray:
        # An internal node's name ("Accessories") says little; the leaves under it say what
        # it holds. Mix the node's own text with the centroid of its subtree's leaves.
        tree, w = self.tree, self.config.subtree_weight
        is_leaf = tree.end == np.arange(1, len(own) + 1)
        # subtrees are contiguous in tree order, so leaf sums are cumsum differences
        csum = np.concatenate([np.zeros((1, own.shape[1])), np.cumsum(own * is_leaf[:, None], 0)])
        inner = np.flatnonzero(~is_leaf)
        subtree = normalize(csum[tree.end[inner]] - csum[inner])
        out = own.copy()
        out[inner] = (1 - w) * own[inner] + w * subtree
        return normalize(out)

    # -- product side ---------------------------------------------------------------------
    def _groups(self, texts: Sequence[str]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            groups.setdefault(detect_language(text), []).append(i)
        return groups

    @staticmethod
    def _standardized(embeddings: np.ndarray, protos: np.ndarray) -> np.ndarray:
        sims = embeddings @ protos.T
        return (sims - sims.mean(1, keepdims=True)) / (sims.std(1, keepdims=True) + 1e-6)

    def _mean_standardized(self, embeddings: np.ndarray, protos: np.ndarray) -> np.ndarray:
        """Each node's mean standardised similarity over the products (the hubness bias)."""
        total = np.zeros(len(protos))
        for start in range(0, len(embeddings), _CHUNK):
            total += self._standardized(embeddings[start : start + _CHUNK], protos).sum(0)
        return total / max(len(embeddings), 1)

    def _best_and_margin(
        self, embeddings: np.ndarray, protos: np.ndarray, bias: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best candidate node per product and its score margin over the runner-up, in chunks
        so a 20,000-product sample against 10k categories never builds one huge matrix."""
        best, margin = [], []
        for start in range(0, len(embeddings), _CHUNK):
            paths = self._scores(embeddings[start : start + _CHUNK], protos, bias)
            paths = paths[:, self.tree.candidates]
            best.append(self.tree.candidates[np.argmax(paths, axis=1)])
            if paths.shape[1] > 1:
                top2 = np.partition(paths, paths.shape[1] - 2, axis=1)[:, -2:]
                margin.append(top2[:, 1] - top2[:, 0])
            else:
                margin.append(np.ones(len(paths)))
        return np.concatenate(best), np.concatenate(margin)

    def _scores(
        self, embeddings: np.ndarray, protos: np.ndarray, bias: np.ndarray | None = None
    ) -> np.ndarray:
        z = self._standardized(embeddings, protos)
        if bias is not None:
            z = z - bias
        logits = z / self.config.level_temperature
        paths = self.tree.path_scores(self.tree.log_conditionals(logits), self.config.beam_width)
        if self.config.flat_weight:
            # the node's own match, beside the top-down route to it
            paths = paths + self.config.flat_weight * logits
        return paths

    def adapt(self, texts: Sequence[str]) -> ZeroShotClassifier:
        """A copy of this classifier fitted to an unlabelled catalogue: no labels are used.

        Two steps, on at most `adapt_sample` texts. (1) Hubness correction: some category
        texts are close to every product; each node's mean standardised similarity over the
        catalogue is subtracted from its scores. (2) Prototype refinement: each node's
        prototype moves towards the centroid of the products confidently decoded under it.
        The copy's `predict` uses both; `self` is left as it was (other threads may be
        predicting with it).
        """
        adapted = copy.copy(self)
        adapted._adapted = dict(self._adapted)
        adapted._bias = dict(self._bias)
        adapted._adapt_in_place(texts)
        return adapted

    def _adapt_in_place(self, texts: Sequence[str]) -> None:
        cfg = self.config
        sample = list(texts)[: cfg.adapt_sample]
        for language, idx in self._groups(sample).items():
            encoder = self.encoders.for_language(language)
            key = (encoder.name, self._category_language(encoder, language))
            self._adapted.pop(key, None)
            self._bias.pop(key, None)
            emb = encoder.encode([sample[i] for i in idx], role=Role.PRODUCT)
            base = self.prototypes(encoder, language)
            protos = base
            for _ in range(cfg.adapt_iterations):
                bias = self._mean_standardized(emb, protos) if cfg.hubness else None
                best, margin = self._best_and_margin(emb, protos, bias)
                # only the more confident half of the products pulls prototypes
                keep = margin >= np.median(margin)
                sums = np.zeros_like(base)
                counts = np.zeros(len(base))
                for d in range(self.tree.max_depth):
                    anc = self.tree.ancestors[d, best[keep]]
                    ok = anc >= 0
                    np.add.at(sums, anc[ok], emb[keep][ok])
                    np.add.at(counts, anc[ok], 1)
                has = counts > 0
                lam = cfg.adapt_weight * counts[has] / (counts[has] + 3.0)
                protos = base.copy()
                protos[has] = normalize(
                    (1 - lam)[:, None] * base[has] + lam[:, None] * normalize(sums[has])
                )
            self._adapted[key] = protos
            if cfg.hubness:
                self._bias[key] = self._mean_standardized(emb, protos)
            logger.info("adapted %d prototypes on %d products (%s)", int(has.sum()), len(idx), key)

    def state(self) -> dict[str, dict[tuple[str, str], np.ndarray]]:
        """The prototypes and what `adapt` learned, as arrays keyed by (encoder, language):
        what a worker needs to predict exactly as this classifier does without embedding
        the categories or adapting again (`load_state`)."""
        return {
            "prototypes": dict(self._prototypes),
            "adapted": dict(self._adapted),
            "bias": dict(self._bias),
        }

    def with_state(self, state: dict[str, dict[tuple[str, str], np.ndarray]]) -> ZeroShotClassifier:
        """A copy that takes over another classifier's `state()` (same taxonomy and config);
        `self` is left as it was."""
        out = copy.copy(self)
        for name in ("prototypes", "adapted", "bias"):
            merged = dict(getattr(self, f"_{name}"))
            for key, value in state.get(name, {}).items():
                if len(value) != len(self.tree):
                    raise ValueError(
                        f"state for {len(value)} nodes; this tree has {len(self.tree)}"
                    )
                merged[tuple(key)] = value
            setattr(out, f"_{name}", merged)
        return out

    def candidate_log_probs(self, texts: Sequence[str]) -> np.ndarray:
        """(n, candidates) log-probabilities of each text's category, candidates in tree
        order (`self.tree.candidates`). An empty text gets a uniform row."""
        out = np.full((len(texts), len(self.tree.candidates)), -np.log(len(self.tree.candidates)))
        nonempty = [i for i, t in enumerate(texts) if t.strip()]
        groups = self._groups([texts[i] for i in nonempty])
        for language, local in groups.items():
            idx = [nonempty[i] for i in local]
            encoder = self.encoders.for_language(language)
            emb = encoder.encode([texts[i] for i in idx], role=Role.PRODUCT)
            key = (encoder.name, self._category_language(encoder, language))
            scores = self._scores(emb, self.prototypes(encoder, language), self._bias.get(key))
            cand = scores[:, self.tree.candidates].astype(np.float64) / self.config.path_temperature
            out[idx] = cand - logsumexp(cand)
        return out

    def predict(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        *,
        top_k: int = 1,
        image_log_probs: tuple[np.ndarray, np.ndarray] | None = None,
        image_weight: float = 0.5,
    ) -> Predictions:
        """Rank category paths for each text.

        Args:
            texts: product texts (title, description...); empty only for image-only rows.
            ids: product ids, defaulting to positions.
            top_k: candidates kept per product.
            image_log_probs: optional (log-probabilities over `self.tree.candidates`, has-image
                mask) from an image scorer (`zeroshot_images`); pooled log-linearly with
                the text's, the image weighing `image_weight`, where a row has both.

        Returns:
            Predictions, best candidate first, each with per-level confidences.
        """
        ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
        logp = self.candidate_log_probs(texts)
        if image_log_probs is not None:
            image_logp, has_image = image_log_probs
            has_text = np.array([bool(t.strip()) for t in texts])
            w = np.where(has_image, np.where(has_text, image_weight, 1.0), 0.0)[:, None]
            logp = (1 - w) * logp + w * np.where(has_image[:, None], image_logp, 0.0)
            logp = logp - logsumexp(logp)
        return Predictions(self.tree.decode(np.exp(logp), ids, top_k))

    def candidate_texts(self, language: str = "en") -> list[list[str]]:
        """`category_texts` restricted to the candidates: what an image scorer matches."""
        return [
            [column[i] for i in self.tree.candidates] for column in self.category_texts(language)
        ]


def logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(1, keepdims=True))


def flat_nearest_path(
    taxonomy: Taxonomy, encoder: Encoder, texts: Sequence[str], *, leaves_only: bool = True
) -> list[tuple[str, ...]]:
    """Baseline: the candidate whose full-path text is most cosine-similar to each text."""
    cats = [c for c in taxonomy if c.is_leaf or not leaves_only]
    protos = encoder.encode([c.path_str for c in cats], role=Role.CATEGORY)
    emb = encoder.encode(list(texts), role=Role.PRODUCT)
    best = np.argmax(emb @ protos.T, axis=1)
    return [cats[i].path for i in best]
