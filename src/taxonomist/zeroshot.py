"""Zero-shot classification into any taxonomy: no labelled data, only category names.

Each category gets a prototype: the mean embedding of its name and its full path (templates
are configurable), in the product text's language where the taxonomy has it. A product is
scored against every node; a softmax over each group of siblings gives
p(node | parent, product), and paths are decoded top-down with a beam over levels. Optionally
the prototypes adapt to the catalogue being classified (no labels used): products confidently
assigned to a category pull its prototype towards them, which repairs category names that
are poor descriptions of the products filed under them, and each product's top level is
read together with its nearest neighbours in that catalogue (`neighbours`).
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .encoders import Encoder, EncoderSet, Role, detect_language, normalize
from .encoders.bundled import find_bundled
from .encoders.progress import encode_with_progress
from .errors import ConfigError
from .hierarchy import TreeIndex
from .name_match import NameIndex
from .neighbours import neighbour_graph, one_step, spread
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
        cross_language_templates: English templates also averaged into the prototypes of a
            category named in another language, when the encoder reads both: the taxonomy's
            English names are its originals and the others translations, and a multilingual
            encoder places a Chinese title near both. On 2,400 zh-retail development rows
            (USE) it put 0.7-0.9 points more products under an acceptable vertical than the
            Chinese names alone. () turns it off.
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
        hubness_k: CSLS-style hubness correction: subtract `hubness_weight` times each
            node's mean standardised similarity to its `hubness_k` nearest leaf categories
            (the leaves stand in for "every kind of product", uniformly), so a category
            close to everything ("magnet") stops winning products that merely sit near it.
            The reference is the taxonomy, not the catalogue: in a catalogue of fridges the
            fridge category is near every product and must not be penalised for it.
            0 turns it off.
        hubness_weight: see `hubness_k`.
        accessory_penalty: subtracted (in standardised units) from categories whose name
            says they are parts or accessories of something ("Dishwasher Parts", "Luggage
            Covers") when the product's text has no accessory word ("case", "cable", "配件"):
            a dishwasher is not a dishwasher part, but its title is close to both.
        name_match: added (in standardised units) to every category whose name the product's
            text holds verbatim, in the language its prototypes use (`name_match`): the
            encoder blurs 红酒架 (wine rack) towards wine, the words do not. 0 turns it off.
        vertical_prior: strength of a catalogue prior over the top-level categories, learnt
            when adapting by EM on the unlabelled products (their top-level probability
            masses as likelihoods, mixing weights re-estimated): a grocery catalogue pulls its
            ambiguous products towards food. The log prior, times this, is added to every
            candidate's log-probability. Not learnt for a flat label set. 0 turns it off.
        neighbour_smoothing: when adapting (taxonomies deeper than one level), each
            product's top-level distribution becomes this share its `neighbour_k` nearest
            products' in the catalogue (by embedding), smoothed over the catalogue's
            neighbour graph (`neighbours`), and the rest its own; within a top level the
            candidates keep their proportions. A title that says little is read with the
            titles around it. 0 turns it off.
        neighbour_k: see `neighbour_smoothing`.
    """

    templates: tuple[str, ...] = ("{name}", "{path}")
    other_language_templates: tuple[str, ...] = ("{name}",)
    cross_language_templates: tuple[str, ...] = ("{name}", "{path}")
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
    hubness_k: int = 0
    hubness_weight: float = 1.0
    # chosen on the development part of benchmarks/zeroshot_quality.py (docs/benchmarks.md)
    # off by default: on the development part it cost top-level accuracy (pricerunner 0.840 ->
    # 0.833) and its leaf gain was only seen on a scoring set; it also pushed a Chinese
    # iPhone title out of Electronics into "Apples" (tests/test_cli.py)
    accessory_penalty: float = 0.0
    # chosen on development rows (docs/benchmarks.md): top level 0.805 -> 0.8125 on zh-retail's
    # 400, 0.800 -> 0.804 on its 2,000 more, pricerunner 0.868 -> 0.873, fashion 0.958 -> 0.955;
    # 1.0 did better on pricerunner (0.885) and worse on Chinese (0.8015); 2.0 (before the
    # head rule) 0.8065 on the 2,000: within noise of 0.5, and it draws more magnets
    name_match: float = 0.5
    vertical_prior: float = 1.0
    neighbour_smoothing: float = 0.8
    neighbour_k: int = 10

    def __post_init__(self) -> None:
        if not self.templates or not self.other_language_templates:
            raise ConfigError("templates: at least one category template is needed")
        for template in (
            *self.templates,
            *self.other_language_templates,
            *self.cross_language_templates,
        ):
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
        for field_name in (
            "hubness_k",
            "hubness_weight",
            "accessory_penalty",
            "name_match",
            "vertical_prior",
        ):
            if getattr(self, field_name) < 0:
                raise ConfigError(f"{field_name} must be >= 0, got {getattr(self, field_name)}")
        if not 0 <= self.adapt_weight <= 1:
            raise ConfigError(f"adapt_weight must be in [0, 1], got {self.adapt_weight}")
        if not 0 <= self.neighbour_smoothing < 1:
            raise ConfigError(
                f"neighbour_smoothing must be in [0, 1), got {self.neighbour_smoothing}"
            )
        if self.neighbour_k < 1:
            raise ConfigError(f"neighbour_k must be >= 1, got {self.neighbour_k}")


@dataclass(frozen=True)
class TextCues:
    """Per product, what its words say beside its embedding: `plain` (no accessory word)
    and `named` (sparse products x nodes: the category names its text holds, or None)."""

    plain: np.ndarray
    named: sparse.csr_matrix | None = None

    def __getitem__(self, rows: slice | np.ndarray) -> TextCues:
        return TextCues(self.plain[rows], None if self.named is None else self.named[rows])


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
        self._accessory = accessory_nodes(taxonomy, self.tree.ids)
        self._name_index: dict[str, NameIndex] = {}
        self._log_prior: dict[tuple[str, str], np.ndarray] = {}
        self._ref_hub: dict[tuple[str, str], np.ndarray] = {}
        # `neighbour_smoothing`: the adapted catalogue's embeddings and its products'
        # smoothed top-level distributions
        self._neighbour_embeddings: dict[tuple[str, str], np.ndarray] = {}
        self._neighbour_smoothed: dict[tuple[str, str], np.ndarray] = {}
        # each candidate's top-level category, as an index into the top-level nodes
        tops = self.tree.ancestors[0, self.tree.candidates]
        self._top_nodes, self._cand_top = np.unique(tops, return_inverse=True)
        # one-hot (candidates, top levels): summing masses per top level is one matrix
        # product, ~7x faster than np.add.at over 10k candidates
        self._cand_top_onehot = np.zeros((len(self._cand_top), len(self._top_nodes)))
        self._cand_top_onehot[np.arange(len(self._cand_top)), self._cand_top] = 1.0

    # -- category side --------------------------------------------------------------------
    def _category_language(self, encoder: Encoder, language: str) -> str:
        if language in self.taxonomy.languages and encoder.handles(language):
            return language
        return "en"

    def category_texts(self, language: str = "en") -> list[list[str]]:
        """The texts describing each node (tree order), one list per template."""
        cfg = self.config
        if language == "en":
            templates = [("en", t) for t in cfg.templates]
        else:
            templates = [(language, t) for t in cfg.other_language_templates]
            templates += [("en", t) for t in cfg.cross_language_templates]
        texts = []
        for names_in, template in templates:
            column = []
            for cid in self.tree.ids:
                path = self.taxonomy.localized_path(cid, names_in)
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
                    texts = self.category_texts(key[1])
                    own = find_bundled(encoder, texts)
                    if own is None:
                        logger.info("embedding %d categories with %s (%s)", len(self.tree), *key)
                        what = (
                            f"embedding {self.taxonomy.name} categories ({key[1]}, {encoder.name})"
                        )
                        per_template = [
                            encode_with_progress(encoder, column, role=Role.CATEGORY, what=what)
                            for column in texts
                        ]
                        own = np.mean(per_template, axis=0)
                    self._prototypes[key] = self._with_subtree(normalize(own))
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

    def _cues(self, texts: Sequence[str], names_in: str) -> TextCues:
        """What the texts' words say: accessory words, and (with `name_match`) the names of
        categories, in language `names_in`, that they hold."""
        named = None
        if self.config.name_match:
            with self._lock:
                if names_in not in self._name_index:
                    names = [self.taxonomy.localized_path(c, names_in)[-1] for c in self.tree.ids]
                    self._name_index[names_in] = NameIndex(names)
            named = self._name_index[names_in].matrix(texts)
        return TextCues(~has_accessory_word(texts), named)

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

    def _hub_bias(
        self, embeddings: np.ndarray, protos: np.ndarray, key: tuple[str, str]
    ) -> np.ndarray | None:
        """The per-node hubness bias: mean standardised similarity over the catalogue
        (`hubness`) plus the taxonomy-referenced CSLS term (`hubness_k`)."""
        bias = self._mean_standardized(embeddings, protos) if self.config.hubness else None
        reference = self._reference_hubness(key)
        if reference is not None:
            bias = reference if bias is None else bias + reference
        return bias

    def _reference_hubness(self, key: tuple[str, str]) -> np.ndarray | None:
        """`hubness_weight` x each node's mean standardised similarity to its k nearest
        leaves (itself excluded), from the categories' own prototypes; computed once."""
        cfg = self.config
        if not cfg.hubness_k or key not in self._prototypes:
            return None
        with self._lock:
            if key not in self._ref_hub:
                protos = self._prototypes[key]
                leaves = self.tree.candidates
                k = min(cfg.hubness_k, len(leaves) - 1)
                if k < 1:
                    return None
                top = np.full((k, len(protos)), -np.inf, dtype=np.float32)
                for start in range(0, len(leaves), _CHUNK):
                    rows = leaves[start : start + _CHUNK]
                    z = self._standardized(protos[rows], protos)
                    z[np.arange(len(rows)), rows] = -np.inf  # a leaf is not its own neighbour
                    both = np.concatenate([top, z], axis=0)
                    top = -np.partition(-both, k - 1, axis=0)[:k]
                self._ref_hub[key] = (cfg.hubness_weight * top.mean(0)).astype(np.float32)
            return self._ref_hub[key]

    def _best_and_margin(
        self,
        embeddings: np.ndarray,
        protos: np.ndarray,
        bias: np.ndarray | None,
        cues: TextCues | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best candidate node per product and its score margin over the runner-up, in chunks
        so a 20,000-product sample against 10k categories never builds one huge matrix."""
        best, margin = [], []
        for start in range(0, len(embeddings), _CHUNK):
            chunk = slice(start, start + _CHUNK)
            paths = self._scores(
                embeddings[chunk], protos, bias, None if cues is None else cues[chunk]
            )
            paths = paths[:, self.tree.candidates]
            best.append(self.tree.candidates[np.argmax(paths, axis=1)])
            if paths.shape[1] > 1:
                top2 = np.partition(paths, paths.shape[1] - 2, axis=1)[:, -2:]
                margin.append(top2[:, 1] - top2[:, 0])
            else:
                margin.append(np.ones(len(paths)))
        return np.concatenate(best), np.concatenate(margin)

    def _scores(
        self,
        embeddings: np.ndarray,
        protos: np.ndarray,
        bias: np.ndarray | None = None,
        cues: TextCues | None = None,
    ) -> np.ndarray:
        """Path scores; `cues` are what the products' words say beside their embeddings."""
        z = self._standardized(embeddings, protos)
        if bias is not None:
            z = z - bias
        if cues is not None:
            cfg = self.config
            if cfg.accessory_penalty and self._accessory.any():
                z = z - cfg.accessory_penalty * np.outer(cues.plain, self._accessory)
            if cfg.name_match and cues.named is not None and cues.named.nnz:
                named = cues.named.tocoo()  # a few names a product: no dense copy of z
                z[named.row, named.col] += cfg.name_match
        logits = z / self.config.level_temperature
        paths = self.tree.path_scores(self.tree.log_conditionals(logits), self.config.beam_width)
        if self.config.flat_weight:
            # the node's own match, beside the top-down route to it
            paths = paths + self.config.flat_weight * logits
        return paths

    def adapt(self, texts: Sequence[str]) -> ZeroShotClassifier:
        """A copy of this classifier fitted to an unlabelled catalogue: no labels are used.

        On at most `adapt_sample` texts. (1) Hubness correction (`hubness`, `hubness_k`):
        some category texts are close to many products; each node's mean standardised
        similarity over the catalogue, or over its k nearest products, is subtracted from its
        scores. (2) Prototype refinement: each node's prototype moves towards the centroid of
        the products confidently decoded under it. (3) With `vertical_prior`, the
        catalogue's mix of top-level categories becomes a prior (EM). The copy's `predict`
        uses them all; `self` is left as it was (other threads may be predicting with it).
        """
        adapted = copy.copy(self)
        adapted._adapted = dict(self._adapted)
        adapted._bias = dict(self._bias)
        adapted._log_prior = dict(self._log_prior)
        adapted._neighbour_embeddings = dict(self._neighbour_embeddings)
        adapted._neighbour_smoothed = dict(self._neighbour_smoothed)
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
            self._log_prior.pop(key, None)
            self._neighbour_embeddings.pop(key, None)
            self._neighbour_smoothed.pop(key, None)
            emb = encoder.encode([sample[i] for i in idx], role=Role.PRODUCT)
            cues = self._cues([sample[i] for i in idx], key[1])
            base = self.prototypes(encoder, language)
            protos = base
            for _ in range(cfg.adapt_iterations):
                bias = self._hub_bias(emb, protos, key)
                best, margin = self._best_and_margin(emb, protos, bias, cues)
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
            bias = self._hub_bias(emb, protos, key)
            if bias is not None:
                self._bias[key] = bias
            # a flat label set's top level is its leaves. A prior over them learnt by EM from
            # zero-shot likelihoods runs away (training rows, 2,000: pricerunner 0.8375 ->
            # 0.7445 with it, zh-retail 0.2935 -> 0.2225), and smoothing there blurs the fine
            # distinctions themselves (fridge / fridge freezer; 0.6 points on pricerunner).
            # Both were chosen on deep taxonomies, where a top level groups many leaves
            deep = self.tree.max_depth > 1
            if cfg.vertical_prior and deep:
                self._log_prior[key] = self._vertical_log_prior(emb, protos, bias, cues)
            if cfg.neighbour_smoothing and len(emb) > 1 and deep:
                # each title once: a repeated title is one product, not k neighbours, and
                # two equal rows would make "the catalogue product a query is" ambiguous
                _, first = np.unique([sample[i] for i in idx], return_index=True)
                rows = np.sort(first)
                own = self._top_masses(
                    emb[rows], protos, bias, cues[rows], self._log_prior.get(key)
                )
                graph = neighbour_graph(emb[rows], cfg.neighbour_k)
                smoothed = spread(graph, own, cfg.neighbour_smoothing)
                self._neighbour_embeddings[key] = emb[rows].astype(np.float32)
                self._neighbour_smoothed[key] = smoothed.astype(np.float32)
            logger.info("adapted %d prototypes on %d products (%s)", int(has.sum()), len(idx), key)

    def _candidate_logp(
        self,
        emb: np.ndarray,
        protos: np.ndarray,
        bias: np.ndarray | None,
        cues: TextCues | None,
        log_prior: np.ndarray | None = None,
    ) -> np.ndarray:
        scores = self._scores(emb, protos, bias, cues)
        cand = scores[:, self.tree.candidates].astype(np.float64) / self.config.path_temperature
        if log_prior is not None:
            cand = cand + log_prior
        return cand - logsumexp(cand)

    def _top_of(self, logp: np.ndarray) -> np.ndarray:
        """(n, top-level categories) probability masses of candidate log-probabilities."""
        return np.exp(logp) @ self._cand_top_onehot

    def _top_masses(
        self,
        emb: np.ndarray,
        protos: np.ndarray,
        bias: np.ndarray | None,
        cues: TextCues,
        log_prior: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each product's probability mass per top-level category, in chunks."""
        return np.concatenate(
            [
                self._top_of(self._candidate_logp(emb[chunk], protos, bias, cues[chunk], log_prior))
                for chunk in (slice(s, s + _CHUNK) for s in range(0, len(emb), _CHUNK))
            ]
        )

    def _smoothed(self, logp: np.ndarray, emb: np.ndarray, key: tuple[str, str]) -> np.ndarray:
        """`logp` with each product's top-level masses replaced by their mix with its
        nearest catalogue products' (`neighbour_smoothing`); within a top-level category
        the candidates keep their proportions."""
        cfg = self.config
        own = self._top_of(logp)
        target = one_step(
            emb,
            own,
            self._neighbour_embeddings[key],
            self._neighbour_smoothed[key],
            cfg.neighbour_smoothing,
            cfg.neighbour_k,
        )
        logp = logp + (np.log(target + 1e-12) - np.log(own + 1e-12))[:, self._cand_top]
        return logp - logsumexp(logp)

    def _vertical_log_prior(
        self, emb: np.ndarray, protos: np.ndarray, bias: np.ndarray | None, cues: TextCues
    ) -> np.ndarray:
        """Per-candidate log prior from the catalogue's top-level mix (EM, no labels)."""
        n_top = len(self._top_nodes)
        likelihood = self._top_masses(emb, protos, bias, cues)
        weights = np.full(n_top, 1.0 / n_top)
        for _ in range(50):
            post = likelihood * weights
            post /= post.sum(1, keepdims=True) + 1e-300
            weights = np.maximum(post.mean(0), 1e-4)
            weights /= weights.sum()
        log_prior = self.config.vertical_prior * np.log(weights * n_top)
        return log_prior[self._cand_top]

    def state(self) -> dict[str, dict[tuple[str, str], np.ndarray]]:
        """The prototypes and what `adapt` learned, as arrays keyed by (encoder, language):
        what a worker needs to predict exactly as this classifier does without embedding
        the categories or adapting again (`load_state`)."""
        return {
            "prototypes": dict(self._prototypes),
            "adapted": dict(self._adapted),
            "bias": dict(self._bias),
            "log_prior": dict(self._log_prior),
            "neighbour_embeddings": dict(self._neighbour_embeddings),
            "neighbour_smoothed": dict(self._neighbour_smoothed),
        }

    def with_state(self, state: dict[str, dict[tuple[str, str], np.ndarray]]) -> ZeroShotClassifier:
        """A copy that takes over another classifier's `state()` (same taxonomy and config);
        `self` is left as it was."""
        out = copy.copy(self)
        neighbours = {tuple(k): v for k, v in state.get("neighbour_embeddings", {}).items()}
        for name in (
            "prototypes",
            "adapted",
            "bias",
            "log_prior",
            "neighbour_embeddings",
            "neighbour_smoothed",
        ):
            merged = dict(getattr(self, f"_{name}"))
            for key, value in state.get(name, {}).items():
                # the catalogue prior is per candidate, the neighbours per catalogue
                # product, the rest per node
                if name == "log_prior":
                    size = len(self.tree.candidates)
                elif name.startswith("neighbour"):
                    size = len(neighbours.get(tuple(key), ()))
                else:
                    size = len(self.tree)
                if len(value) != size:
                    raise ValueError(f"state for {len(value)} entries of {name}; expected {size}")
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
            cues = self._cues([texts[i] for i in idx], key[1])
            protos = self.prototypes(encoder, language)
            bias = self._bias.get(key) if key in self._bias else self._reference_hubness(key)
            logp = self._candidate_logp(emb, protos, bias, cues, self._log_prior.get(key))
            if key in self._neighbour_embeddings:
                logp = self._smoothed(logp, emb, key)
            out[idx] = logp
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


# A category is a part or accessory of something when its own name says so. English names
# decide (every bundled taxonomy has them); matched as whole words, singular or plural.
_ACCESSORY_CATEGORY = re.compile(
    r"\b(parts?|accessor(y|ies)|covers?|cases?|cables?|chargers?|mounts?|holders?|"
    r"replacements?|spares?|refills?|adapters?|converters?|straps?|skins?|protectors?|"
    r"filters?|kits?)\b",
    re.IGNORECASE,
)
# Words in a product's text that say it is such a thing (English and Chinese).
_ACCESSORY_TEXT = re.compile(
    r"\b(parts?|accessor(y|ies)|covers?|cases?|cables?|chargers?|charging|mounts?|holders?|"
    r"replacements?|spares?|refills?|adapters?|adaptors?|straps?|skins?|protectors?|"
    r"guards?|tempered|pouch(es)?|sleeves?|filters?|stands?|brackets?|remote)\b"
    r"|配件|零件|备件|外壳|手机壳|保护壳|保护套|手机套|钢化膜|贴膜|保护膜|充电器|充电线|数据线|"
    r"支架|替换|滤芯|刷头|遥控器",
    re.IGNORECASE,
)


_PARTS = re.compile(r"\bparts?\b", re.IGNORECASE)


def accessory_nodes(taxonomy: Taxonomy, ids: Sequence[str]) -> np.ndarray:
    """Boolean per node (in `ids` order): it holds parts or accessories. A leaf counts when
    its name says so; an internal node only when it holds parts ("Television Parts &
    Accessories"): "Clothing Accessories" holds belts and "Electronics Accessories" CPUs."""
    out = []
    for cid in ids:
        cat = taxonomy.get(cid)
        pattern = _ACCESSORY_CATEGORY if cat.is_leaf else _PARTS
        out.append(bool(pattern.search(cat.name)))
    return np.array(out, dtype=bool)


def has_accessory_word(texts: Sequence[str]) -> np.ndarray:
    """Boolean per text: it names a part or an accessory ("case", "cable", "配件")."""
    return np.array([bool(_ACCESSORY_TEXT.search(t)) for t in texts], dtype=bool)


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
