"""`fewshot`: a classifier for catalogues with a handful of labelled products per category.

With 5-20 examples per category a network head overfits and a validation split would eat a
third of the labels. This kind starts from what zero-shot knows, the category names, and
lets the examples move it:

- prototypes: each category's vector is the sum of its examples' embeddings plus `prior`
  times its zero-shot prototype (the embedded name and path, `taxonomist.zeroshot`), so a
  category with no or few examples leans on its name and one with many on its examples;
  a product scores the cosine to each prototype.
- linear: TF-IDF n-grams + a linear SVM on the examples (the words titles share).
- names: the categories whose name the title spells out ("... freestanding fridge white"
  names Fridges; `taxonomist.name_match`), a cue the examples need not teach.
- memory (with unlabelled products): the catalogue's products nearest on rare n-grams
  (model numbers, series names) vote with their labels and pseudo-labels, as `knn` does
  with training rows.

The prior strength and the members' temperatures and weights are chosen by
cross-validation on the labelled products themselves (out-of-fold scores, every example
scored by a model that never saw it), so no row is held back: all labels train the final
model. Given the catalogue's unlabelled products too, it self-trains the linear member on
their confident pseudo-labels when cross-validation says that helps (`selftrain`).
Persisted without pickle: prototypes, TF-IDF vocabularies, weights in safetensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import fit_temperature, log_softmax
from ..encoders import Encoder, EncoderSet, Role, build_cached_encoder, normalize
from ..errors import ConfigError
from .base import Model, Progress
from .config import check_ngram_ranges, check_positive, config_from_dict
from .ensemble import simplex_grid
from .knn import unit_rows
from .pool_memory import POWER, SMOOTHING, PoolMemory
from .tfidf import TfidfFeatures


@dataclass(frozen=True)
class FewShotConfig:
    """Args:
    encoder: registry name (minilm, e5...) or a sentence-transformers directory.
    priors: candidate weights of the category-name prototype, in units of one example;
        cross-validation picks one.
    folds: cross-validation folds (fewer when a category has fewer examples).
    word_ngrams / char_ngrams / cjk_char_ngrams / C: the linear member's, as in `linear`.
    weight_step: grid step of the members' weights.
    seed: fold assignment (and the sample of a pool larger than `max_unlabelled`).
    self_training_shares: with unlabelled products, the candidate shares of each predicted
        class's most confident pseudo-labels to train on; cross-validation picks one or none.
    prior_shifts: with unlabelled products, candidate strengths of the shift from the
        labelled sample's class mix to the pool's (0: none); cross-validation picks one.
    max_unlabelled: at most this many unlabelled products are used (a random sample).
    pool_smoothing: with unlabelled products, candidate strengths of label spreading: the
        pool's distributions smoothed over its nearest-neighbour graph (TF-IDF n-grams,
        `pool_neighbours` neighbours; `taxonomist.neighbours`), which labels every pool
        product (no share is picked). Cross-validation weighs these candidates with the
        shares of raw pseudo-labels and none.
    name_match: a third member, the category names a title holds; cross-validation gives
        it its weight (0 when the names never help), so False only saves the look-up.
    other_encoders: with unlabelled products and the English default `encoder` (MiniLM),
        encoders tried beside it: the whole fit runs once with each, and one replaces
        MiniLM when its self-trained model has the lower out-of-fold Brier score
        (`choose_encoder`).
        USE-multilingual reads the German titles of an English catalogue that MiniLM
        cannot; on an English-only catalogue MiniLM reads better (docs/benchmarks.md).
    pseudo_label_power: each pseudo-label weighs in the SVM as its probability to this
        power, scaled to mean 1 (0: all weigh the same; `selftrain.confidence_weights`).
    shift_pseudo_labels: pseudo-label under the catalogue's estimated class mix, not the
        labelled sample's (only where the estimate is trusted; `selftrain`).
    name_anchors: before spreading, a pool product whose title names exactly one category,
        the one the members also pick, is taken as certain of it
        (`selftrain.anchor_agreed_names`).
    mix_criterion: with unlabelled products, what chooses the members' weights out of fold
        for each candidate: "brier" (the Brier score, as candidates are chosen) or
        "log_loss" (the rule until the fourteenth session). On product groups held out of
        the pool the log-loss kept labels-only prototypes in the mix that cost pricerunner
        accuracy (`benchmarks/mix_criterion.py`, docs/benchmarks.md).
    pool_memory: with unlabelled products, a fourth member: the labelled and pseudo-labelled
        products nearest a title on rare n-grams (found in at most `memory_max_df` of them)
        vote with their labels, the `memory_k` nearest each (`knn.vote`). A new product of a
        series the pool holds ("fab28rb1" beside the pool's "fab28lb1") takes its series'
        label where the SVM's weight on a model-number n-gram is one among many.
        Cross-validation weighs it (0 where it does not help).
    group_folds: with unlabelled products, each fold of the self-training cross-validation
        leaves the pool products of its held-out rows' product groups (the same title, a
        shared rare model number; `taxonomist.product_groups`) out of its pseudo-labels and
        memory, so the members are scored on products they hold no copy of, as new
        products meet them: a memory that remembers a held-out title's copy would look
        right for it.
    """

    encoder: str = "minilm"
    priors: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    folds: int = 5
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    cjk_char_ngrams: tuple[int, int] | None = None
    C: float = 0.5
    weight_step: float = 0.1
    seed: int = 13
    self_training_shares: tuple[float, ...] = (0.3, 0.6)
    prior_shifts: tuple[float, ...] = (0.0, 0.5, 1.0)
    max_unlabelled: int = 50_000
    pool_smoothing: tuple[float, ...] = (0.8,)
    pool_neighbours: int = 10
    name_match: bool = True
    other_encoders: tuple[str, ...] = ("use",)
    pseudo_label_power: float = 4.0
    shift_pseudo_labels: bool = True
    name_anchors: bool = True
    mix_criterion: str = "brier"
    pool_memory: bool = True
    memory_max_df: float = 0.002
    memory_k: int = 10
    group_folds: bool = True

    def __post_init__(self) -> None:
        if not self.priors or any(p < 0 for p in self.priors):
            raise ConfigError(f"fewshot.priors must be non-negative numbers, got {self.priors}")
        if self.folds < 2:
            raise ConfigError(f"fewshot.folds must be >= 2, got {self.folds}")
        check_positive("fewshot", C=self.C, weight_step=self.weight_step)
        if any(not 0 < s <= 1 for s in self.self_training_shares):
            raise ConfigError(
                f"fewshot.self_training_shares must be in (0, 1], got {self.self_training_shares}"
            )
        check_positive("fewshot", max_unlabelled=self.max_unlabelled)
        check_positive("fewshot", pool_neighbours=self.pool_neighbours, memory_k=self.memory_k)
        if not 0 < self.memory_max_df <= 1:
            raise ConfigError(f"fewshot.memory_max_df must be in (0, 1], got {self.memory_max_df}")
        if not 0 <= self.pseudo_label_power <= 16:
            raise ConfigError(
                f"fewshot.pseudo_label_power must be in [0, 16], got {self.pseudo_label_power}"
            )
        if any(not 0 < s < 1 for s in self.pool_smoothing):
            raise ConfigError(
                f"fewshot.pool_smoothing must be in (0, 1), got {self.pool_smoothing}"
            )
        if not self.prior_shifts or any(not 0 <= s <= 1 for s in self.prior_shifts):
            raise ConfigError(f"fewshot.prior_shifts must be in [0, 1], got {self.prior_shifts}")
        if self.mix_criterion not in ("brier", "log_loss"):
            raise ConfigError(
                f"fewshot.mix_criterion must be 'brier' or 'log_loss', got {self.mix_criterion!r}"
            )
        check_ngram_ranges("fewshot", word_ngrams=self.word_ngrams, char_ngrams=self.char_ngrams)
        if self.cjk_char_ngrams is not None:
            check_ngram_ranges("fewshot", cjk_char_ngrams=self.cjk_char_ngrams)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FewShotConfig:
        return config_from_dict(cls, data)


def assign_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold per row, each class dealt round-robin after a shuffle (stratified). A class
    with one example lands in one fold; there it is scored as a category never seen."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        out[rows] = (np.arange(len(rows)) + rng.integers(folds)) % folds
    return out


def pool_weights(members: list[np.ndarray], y: np.ndarray, step: float) -> np.ndarray:
    """The members' weights (a simplex grid point): the lowest out-of-fold log-loss among
    the mixes that make no more out-of-fold errors than the best member alone. Log-loss
    alone rewards calibration: with E5 on pricerunner's 10 a category it dropped the
    prototypes (0.81 out-of-fold accuracy alone) for a mix right on 0.77. The same rule as
    ensemble selection (`crossval`)."""
    rows = np.arange(len(y))
    ceiling = min(int((m.argmax(1) != y).sum()) for m in members)
    best, best_loss = None, float("inf")
    for w in simplex_grid(len(members), step):
        pooled = log_softmax(sum(wi * m for wi, m in zip(w, members) if wi > 0))
        if int((pooled.argmax(1) != y).sum()) > ceiling:
            continue
        loss = float(-pooled[rows, y].mean())
        if loss < best_loss:
            best, best_loss = w, loss
    assert best is not None  # the best member alone is a grid point
    return best


def choose_encoder(
    figures: dict[str, dict[str, float]], score_key: str = "cv_brier_self_trained"
) -> str:
    """The encoder whose self-trained model has the lowest out-of-fold Brier score
    (`score_key`); a tie stays with the first (the default). `figures`: each encoder's fit
    history row, in order of preference.

    No accuracy floor here, unlike the choice among one encoder's candidates. There the
    floor keeps out pseudo-labels that cost accuracy; here it weighed two models by their
    errors on the labelled rows, where one row could decide. On pricerunner's development
    rows (draw 18), MiniLM kept its place by one out-of-fold error, against USE's lower
    Brier score, and scored 0.903 to USE's 0.941 (docs/benchmarks.md)."""
    first = next(iter(figures))
    return min(figures, key=lambda name: (figures[name][score_key], name != first))


class FewShotModel(Model):
    kind = "fewshot"
    config_class = FewShotConfig
    uses_unlabelled = True

    def __init__(
        self, taxonomy, config: FewShotConfig | None = None, encoder: Encoder | None = None
    ) -> None:
        super().__init__(taxonomy, config)
        self._encoder = encoder
        self._encoder_given = encoder is not None
        self._saved: Path | None = None
        self._prototypes: np.ndarray | None = None  # (labels, dim), unit rows
        self._tfidf: TfidfFeatures | None = None
        self._coef: np.ndarray | None = None
        self._intercept: np.ndarray | None = None
        self.prior: float = 1.0
        self.members = ["prototypes", "linear"]  # what `weights` weigh, in order
        self.member_temperatures = np.ones(2)
        self.weights = np.array([0.5, 0.5])
        self._teacher_members = list(self.members)  # the labels-only model's
        self._memory: PoolMemory | None = None  # the pool's (`pool_memory`)
        # self-training: the share of pseudo-labels used (0: none), what cross-validation
        # measured, the labels-only members' mix that pseudo-labels, and the pool (in memory
        # only, for a refit)
        self.self_training_share = 0.0
        self.pool_smoothing = 0.0
        self.prior_shift = 0.0
        self._bias: np.ndarray | None = None  # added to the pooled scores (log prior ratio)
        self.self_training: dict[str, Any] | None = None
        self._labels_only_mix: tuple[np.ndarray, np.ndarray] | None = None
        self._teacher_bias: np.ndarray | None = None  # the pseudo-labels' log prior shift
        self._class_shift: np.ndarray | None = None  # the estimated mix's log prior ratio
        self._unlabelled: list[str] | None = None
        self._pool_features: Any = None  # (TF-IDF over labels + pool, their rows, pool emb)
        self._pool_graph: Any = None  # the pool's neighbour graph (`pool_smoothing`)
        # (labelled and pool titles, their TF-IDF features and rows, the graph), while fitting
        self._shared_pool_rows: Any = None
        self._name_index: Any = None

    @property
    def encoder(self) -> Encoder:
        return self.lazy(
            "_encoder",
            lambda: build_cached_encoder(
                self.config.encoder, saved=self._saved, cache=self.embedding_cache()
            ),
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, role=Role.PRODUCT, batch_size=128)

    def name_prototypes(self) -> np.ndarray:
        """Zero-shot prototypes of `self.labels` (names and paths, as zero-shot builds them)."""
        from ..zeroshot import ZeroShotClassifier, ZeroShotConfig

        # the other language's names alone: the learning curve was measured so, and with E5
        # (Chinese) they ship pre-embedded while English paths would take E5 ~25 minutes
        config = ZeroShotConfig(leaves_only=False, cross_language_templates=())
        zeroshot = ZeroShotClassifier(self.taxonomy, EncoderSet({}, self.encoder), config)
        language = "zh" if "zh" in self.taxonomy.languages and self.encoder.handles("zh") else "en"
        nodes = zeroshot.prototypes(self.encoder, language)
        position = {cid: i for i, cid in enumerate(zeroshot.tree.ids)}
        return nodes[[position[c] for c in self.labels]]

    # -- the members ----------------------------------------------------------------------
    def named(self, texts: list[str]) -> np.ndarray:
        """(texts, labels) 1 where the text holds the label's name (in any of the
        taxonomy's languages), else 0."""
        from ..name_match import NameIndex

        if self._name_index is None:
            cats = [self.taxonomy.get(c) for c in self.labels]
            self._name_index = NameIndex([(c.name, *c.names.values()) for c in cats])
        return self._name_index.matrix(texts).toarray()

    @staticmethod
    def _class_prototypes(
        emb: np.ndarray, y: np.ndarray, names: np.ndarray, prior: float
    ) -> np.ndarray:
        sums = prior * names
        np.add.at(sums, y, emb)
        return normalize(sums)

    def _tfidf_features(self, min_df: int = 1) -> TfidfFeatures:
        cfg = self.config
        return TfidfFeatures(
            cfg.word_ngrams, cfg.char_ngrams, min_df, cjk_char_ngrams=cfg.cjk_char_ngrams
        )

    def _fit_linear(self, texts: list[str], y: np.ndarray):
        """(features, coef, intercept) with a row for every label (zero for absent ones)."""
        tfidf = self._tfidf_features()
        return (tfidf, *self._fit_svc(tfidf.fit_transform(texts), y))

    def _fit_svc(self, x, y: np.ndarray, weights=None) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) of a linear SVM on features `x` (rows weighted by `weights`),
        a row for every label."""
        from sklearn.svm import LinearSVC

        n_labels = len(self.labels)
        coef = np.zeros((n_labels, x.shape[1]), dtype=np.float32)
        intercept = np.full(n_labels, -1.0, dtype=np.float32)  # a class never seen: below
        present = np.unique(y)
        if len(present) == 1:
            coef[present[0]], intercept[present[0]] = 0.0, 1.0
            return coef, intercept
        svc = LinearSVC(C=self.config.C, max_iter=5000).fit(x, y, sample_weight=weights)
        if len(present) == 2:  # sklearn keeps one row for two classes
            coef[present[1]], coef[present[0]] = svc.coef_[0] / 2, -svc.coef_[0] / 2
            intercept[present[1]] = svc.intercept_[0] / 2
            intercept[present[0]] = -svc.intercept_[0] / 2
        else:
            coef[svc.classes_] = svc.coef_
            intercept[svc.classes_] = svc.intercept_
        return coef, intercept

    def _fit_svc_with_pseudo_labels(self, x, y, x_pseudo, y_pseudo, confidence):
        """`_fit_svc` on labelled rows (weight 1) and pseudo-labelled ones, each weighted by
        its confidence (`selftrain.confidence_weights`)."""
        from scipy.sparse import vstack

        from .selftrain import confidence_weights

        weights = confidence_weights(confidence, self.config.pseudo_label_power)
        return self._fit_svc(
            vstack([x, x_pseudo]).tocsr(),
            np.concatenate([y, y_pseudo]),
            np.concatenate([np.ones(len(y)), weights]),
        )

    def _member_scores(
        self, texts: list[str], emb: np.ndarray, members: list[str] | None = None
    ) -> list[np.ndarray]:
        """Each member's scores (of `members`, default `self.members`), in that order."""
        prototypes, coef = self._prototypes, self._coef
        assert prototypes is not None and self._tfidf is not None and coef is not None
        x = self._tfidf.transform(texts)
        scores = {
            "prototypes": lambda: emb @ prototypes.T,
            "linear": lambda: np.asarray(x @ coef.T) + self._intercept,
            "names": lambda: self.named(texts),
            "memory": lambda: self._memory_scores(x, texts),
        }
        return [scores[m]() for m in (self.members if members is None else members)]

    def _memory_scores(self, x, texts: list[str]) -> np.ndarray:
        """The pool memory's log-votes for `texts` (TF-IDF rows `x`; `pool_memory`)."""
        assert self._memory is not None
        return self._memory.scores(x, texts, len(self.labels), self.config.memory_k)

    def memory_columns(self, x) -> np.ndarray:
        """The rare n-grams of the labelled and pool rows `x` that the memory compares on:
        chosen over the whole pool, whichever of it is pseudo-labelled, so that every
        candidate is scored on the same n-grams. At least those in two rows: the n-grams
        (`min_df=2`) are all in two or more."""
        from .knn import rare_columns

        return rare_columns(x, self.config.memory_max_df, at_least=2)

    # -- fitting --------------------------------------------------------------------------
    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None, unlabelled=None):
        from ..languages import ENGLISH_DEFAULTS

        others = [e for e in self.config.other_encoders if e != self.config.encoder]
        # an encoder the user chose (or handed in, as tests do), or the language plan's
        # Chinese one, is the one to use
        default = self.config.encoder.lower() in ENGLISH_DEFAULTS
        history = self._fit_with_encoder(texts, y, valid_texts, valid_y, progress, unlabelled)
        if not unlabelled or not others or not default or self._encoder_given:
            self._shared_pool_rows = None
            return history
        tried = {self.config.encoder: (self, history)}
        for name in others:
            model = type(self)(self.taxonomy, replace(self.config, encoder=name))
            model.use_settings_of(self)
            model.labels = self.labels
            model._shared_pool_rows = self._shared_pool_rows
            run = model._fit_with_encoder(texts, y, valid_texts, valid_y, progress, unlabelled)
            tried[name] = (model, run)
        chosen = choose_encoder({name: run[0] for name, (_, run) in tried.items()})
        model, history = tried[chosen]
        if model is not self:
            vars(self).update(vars(model))
        self._shared_pool_rows = None
        assert self.self_training is not None
        self.self_training["encoder_choice"] = {
            "chosen": chosen,
            "criterion": "lowest out-of-fold Brier score (a tie: the first)",
            "candidates": {
                name: {
                    "cv_accuracy_self_trained": run[0]["cv_accuracy_self_trained"],
                    "cv_log_loss_self_trained": run[0]["cv_log_loss_self_trained"],
                    "cv_brier_self_trained": run[0]["cv_brier_self_trained"],
                }
                for name, (_, run) in tried.items()
            },
        }
        return history

    def _fit_with_encoder(
        self, texts, y, valid_texts, valid_y, progress: Progress | None, unlabelled=None
    ):
        """The whole fit with `config.encoder`: cross-validation, members, self-training."""
        cfg = self.config
        emb = self.embed(texts)
        names = self.name_prototypes()
        counts = np.bincount(y, minlength=len(self.labels))
        folds = int(min(cfg.folds, max(2, np.max(counts))))
        fold = assign_folds(y, folds, cfg.seed)
        # out-of-fold scores: each example scored by members fitted without its fold
        oof_proto = {p: np.zeros((len(y), len(self.labels))) for p in cfg.priors}
        oof_linear = np.zeros((len(y), len(self.labels)))
        fold_linear = {}  # fold -> its linear member, which pseudo-labels for self-training
        for f in range(folds):
            test, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
            if not len(test) or not len(train):
                continue
            for p in cfg.priors:
                protos = self._class_prototypes(emb[train], y[train], names, p)
                oof_proto[p][test] = emb[test] @ protos.T
            tfidf, coef, intercept = self._fit_linear([texts[i] for i in train], y[train])
            oof_linear[test] = np.asarray(tfidf.transform([texts[i] for i in test]) @ coef.T)
            oof_linear[test] += intercept
            fold_linear[f] = (tfidf, coef, intercept)
            if progress:
                progress("cross-validation", f + 1, folds)
        rows = np.arange(len(y))
        scored: dict[float, tuple[float, float]] = {}
        for p in cfg.priors:
            t = fit_temperature(oof_proto[p], y)
            scored[p] = (float(-log_softmax(oof_proto[p], t)[rows, y].mean()), t)
        self.prior = min(scored, key=lambda p: scored[p][0])
        t_linear = fit_temperature(oof_linear, y)
        self.member_temperatures = np.array([scored[self.prior][1], t_linear])
        self.members = ["prototypes", "linear"]
        self._memory = None
        members = [
            log_softmax(oof_proto[self.prior], self.member_temperatures[0]),
            log_softmax(oof_linear, t_linear),
        ]
        # the names need no fitting, so their scores are out of fold as they are; with no
        # labelled title naming its category there is nothing to weigh them by
        named = self.named(texts) if cfg.name_match else None
        if named is not None and named[rows, y].any():
            t_named = fit_temperature(named, y)
            self.member_temperatures = np.append(self.member_temperatures, t_named)
            members.append(log_softmax(named, t_named))
            self.members.append("names")
        self._teacher_members = list(self.members)
        self.weights = pool_weights(members, y, cfg.weight_step)
        pooled = sum(w * m for w, m in zip(self.weights, members))
        cv_accuracy = float((np.asarray(pooled).argmax(1) == y).mean())
        self._labels_only_mix = (self.member_temperatures.copy(), self.weights.copy())
        self._fit_members(texts, y, emb, names)
        row: dict[str, float] = {
            "epoch": 1,
            "cv_accuracy": cv_accuracy,
            "cv_accuracy_prototypes": float((members[0].argmax(1) == y).mean()),
            "cv_accuracy_linear": float((members[1].argmax(1) == y).mean()),
            "prior": float(self.prior),
            "weight_prototypes": float(self.weights[0]),
        }
        if len(members) == 3:
            row["cv_accuracy_names"] = float((members[2].argmax(1) == y).mean())
            row["weight_names"] = float(self.weights[2])
        if unlabelled:
            labels_only = log_softmax(np.asarray(pooled))
            figures, pool_scores = self._self_train_cv(
                texts,
                y,
                emb,
                names,
                fold,
                fold_linear,
                members[0],
                oof_linear,
                members[2] if len(members) == 3 else None,
                labels_only,
                unlabelled,
                progress,
            )  # fmt: skip
            row.update(figures)
            row["cv_log_loss_labels_only"] = float(-labels_only[rows, y].mean())
            if self.self_training_share:
                self._apply_self_training(texts, y, pool_scores)
        if valid_texts:
            row["valid_accuracy"] = float((self._logits(valid_texts).argmax(1) == valid_y).mean())
        return [row]

    def _self_train_cv(
        self, texts, y, emb, names, fold, fold_linear, prototype_logp, oof_linear, names_logp,
        labels_only_logp, unlabelled, progress,
    ):  # fmt: skip
        """Choose the share of pseudo-labels (or none) and the prior shift (or none) out of
        fold; sets `self_training_share`, `prior_shift`, the class bias, `self_training` and
        the members' mix. `labels_only_logp`: the labels-only mix, out of fold. Returns the
        history figures and the pool's member scores under the labels-only model fitted on
        every label (what pseudo-labels the pool)."""
        from .knn import vote
        from .selftrain import (
            best_candidate,
            catalogue_prior,
            pooled_logp,
            pseudo_labels,
            score_candidate,
            select_confident,
            total_variation,
        )

        cfg = self.config
        pool = list(dict.fromkeys(t for t in unlabelled if t))  # repeats carry nothing new
        if len(pool) > cfg.max_unlabelled:
            rng = np.random.default_rng(cfg.seed)
            pool = [pool[i] for i in sorted(rng.choice(len(pool), cfg.max_unlabelled, False))]
        self._unlabelled = pool
        pool_emb = self.embed(pool)
        pool_scores = self._member_scores(pool, pool_emb, self._teacher_members)
        pool_named = pool_scores[2:]  # the names need no fitting: the same in every fold
        anchors = self._name_anchors(pool_scores)
        # one vocabulary over labelled and unlabelled titles (no labels involved), so each
        # candidate's SVM only slices rows; n-grams in a single title cannot spread a label
        shares = sorted(set(cfg.self_training_shares))
        smoothings = [0.0, *sorted(set(cfg.pool_smoothing))]
        # the n-grams and their graph know no encoder: a fit per encoder shares them
        key = (tuple(texts), tuple(pool))
        if self._shared_pool_rows is not None and self._shared_pool_rows[0] == key:
            features, x, self._pool_graph = self._shared_pool_rows[1:]
        else:
            features = self._tfidf_features(min_df=2)
            x = features.fit_transform(list(texts) + pool)
            if len(smoothings) > 1:
                from ..neighbours import neighbour_graph

                # titles that share n-grams (a model number, a German word) are products of
                # a kind: on pricerunner at 10 a category, smoothing over this graph took the
                # pool's pseudo-labels from 0.844 to 0.888 right, the embedding graph at
                # best to 0.851
                self._pool_graph = neighbour_graph(x[len(texts) :], cfg.pool_neighbours)
            self._shared_pool_rows = (key, features, x, self._pool_graph)
        x_labelled, x_pool = x[: len(texts)], x[len(texts) :]
        temperatures, weights = self._labels_only_mix  # type: ignore[misc]
        # the catalogue's class mix, from how the labels-only model (fitted on every label)
        # sees the pool; out-of-fold rows are weighted to it (see `selftrain`)
        train_prior = np.bincount(y, minlength=len(self.labels)) / len(y)
        pool_logp = pooled_logp(pool_scores, temperatures, weights)
        # the catalogue is the labelled rows and the pool together: a category whose every
        # product was labelled is absent from the pool, not from the catalogue
        pool_prior = catalogue_prior(pool_logp, train_prior)
        prior = (len(y) * train_prior + len(pool) * pool_prior) / (len(y) + len(pool))
        # trust the estimate only if the same estimator, run on the labelled rows' own
        # out-of-fold predictions (whose mix is known), lands well within the shift it
        # claims: a weak model's EM runs away to a few categories (zh-retail at 5-20 a
        # category put 80-94% on one department and predicted nothing else)
        error = total_variation(catalogue_prior(labels_only_logp, train_prior), train_prior)
        claimed = total_variation(prior, train_prior)
        trusted = 2 * error < claimed
        if not trusted:
            prior = train_prior
        row_weights = prior[y] / train_prior[y]
        shift = np.log(prior) - np.log(train_prior)
        # the teacher learnt under the labelled sample's mix (k of each category), which
        # overstates the small categories: fashion's 10 labelled "Free Gifts" (54 in the
        # catalogue) include Maxima watches, and the pool's Maxima watches followed them
        # out of "Watches" (192). So each candidate also comes with pseudo-labels drawn
        # under the catalogue's estimated mix (the teacher's posteriors shifted by the log
        # prior ratio, as Saerens' EM adjusts them). Always on, fashion's development rows
        # gained 0.5-1.3 points on three draws of four and pricerunner's (a pool near the
        # labelled mix, roughly estimated) lost 0.5 and 1.5, so cross-validation picks
        teachers = {0.0: None}
        if trusted and cfg.shift_pseudo_labels:
            teachers[1.0] = shift
        # raw pseudo-labels: the most confident share of each class; spread labels: all of
        # the pool, spreading is what vets them. Measured on the pools' own hidden labels
        # at 10 a category: with spread labels of the whole pool as a candidate,
        # pricerunner's pool went 0.861 -> 0.893; offering all the raw ones as well made
        # cross-validation pick them on fashion, whose pool fell 0.931 -> 0.921
        keys = [
            (s, a, u)
            for u in teachers
            for s, a in [(s, 0.0) for s in shares] + [(1.0, a) for a in smoothings[1:]]
        ]
        oof = {k: np.zeros((len(y), len(self.labels))) for k in keys}
        used = {k: 0 for k in keys}
        groups = self._groups(texts, pool) if cfg.group_folds else None
        held_out = 0
        memory = self._memory_folds(x) if cfg.pool_memory else None
        oof_memory = {k: np.zeros((len(y), len(self.labels))) for k in keys}
        for step, (f, (tfidf, coef, intercept)) in enumerate(sorted(fold_linear.items())):
            test, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
            # the pool's copies of the fold's held-out products (`group_folds`)
            copies = None if groups is None else np.isin(groups[1], groups[0][test])
            held_out += 0 if copies is None else int(copies.sum())
            if memory is not None:
                sims = (memory[test] @ memory.T).tocsr()  # held-out rows by every row
                remembered = np.full(memory.shape[0], -1, dtype=np.int32)
                remembered[train] = y[train]
                if groups is not None:  # nor the labelled copies of the held-out products
                    remembered[train[np.isin(groups[0][train], groups[0][test])]] = -1
            protos = self._class_prototypes(emb[train], y[train], names, self.prior)
            linear = np.asarray(tfidf.transform(pool) @ coef.T) + intercept
            for a, u in [(a, u) for u in teachers for a in smoothings]:
                pred, confidence = pseudo_labels(
                    [pool_emb @ protos.T, linear, *pool_named],
                    temperatures,
                    weights,
                    self._pool_graph,
                    a,
                    teachers[u],
                    anchors,
                )
                for key in [k for k in keys if k[1:] == (a, u)]:
                    chosen = select_confident(pred, confidence, key[0])
                    if copies is not None:
                        chosen = chosen[~copies[chosen]]
                    used[key] += len(chosen)
                    if memory is not None:
                        labels = remembered.copy()
                        labels[len(y) + chosen] = pred[chosen]
                        oof_memory[key][test] = vote(
                            sims, labels, len(self.labels), cfg.memory_k, POWER, SMOOTHING
                        )
                    c, b = self._fit_svc_with_pseudo_labels(
                        x_labelled[train], y[train], x_pool[chosen], pred[chosen],
                        confidence[chosen],
                    )  # fmt: skip
                    oof[key][test] = np.asarray(x_labelled[test] @ c.T) + b
            if progress:
                progress("self-training cross-validation", step + 1, len(fold_linear))
        fixed = None if names_logp is None else (weights[2] * names_logp, float(weights[2]))
        candidates: dict[tuple[float, float, float, float], dict[str, Any]] = {}
        floor = None  # the labels-only model's out-of-fold accuracy, once scored
        for s, a, u in [(0.0, 0.0, 0.0), *keys]:
            linear_oof = oof_linear if s == 0 else oof[(s, a, u)]
            for strength in sorted(set(cfg.prior_shifts)) if trusted else [0.0]:
                candidates[(s, a, u, strength)] = score_candidate(
                    prototype_logp,
                    linear_oof,
                    y,
                    cfg.weight_step,
                    row_weights,
                    strength * shift,
                    fixed=fixed,
                    criterion=cfg.mix_criterion,
                    # the memory remembers the pseudo-labels: none, no memory (a weight 0)
                    memory_oof=oof_memory[(s, a, u)] if memory is not None and s else None,
                    floor=floor,
                )
                if memory is not None and not s:
                    candidates[(s, a, u, strength)]["weights"].append(0.0)
                if floor is None:
                    floor = float(candidates[(s, a, u, strength)]["cv_accuracy"])
        # as ensemble selection does (`crossval`): pseudo-labels or a shift are taken only if
        # they make no more out-of-fold errors than the labels alone (zh-retail at 20 a
        # category: 30% pseudo-labels cut the log-loss 2.82 -> 2.18 while accuracy fell
        # 0.598 -> 0.583); among those, the lowest Brier score; ties go to fewer
        # pseudo-labels and less shift. Brier, not log-loss: it is bounded, so a few
        # labelled rows that a confident student gets wrong (mislabelled examples) do not
        # outweigh the rest. On development rows over five draws each it never chose worse
        # and gained 0.28 (fashion) and 0.14 points (pricerunner) (docs/benchmarks.md)
        best = best_candidate(candidates, (0.0, 0.0, 0.0, 0.0), "cv_brier")
        self.self_training_share, self.pool_smoothing, _, self.prior_shift = map(float, best)
        self._bias = (self.prior_shift * shift).astype(np.float32)
        self._teacher_bias = teachers[best[2]]
        self._class_shift = shift
        self.self_training = {
            "unlabelled_rows": len(pool),
            "share": self.self_training_share,
            "smoothing": self.pool_smoothing,
            "prior_shift": self.prior_shift,
            "pseudo_labels": 0,
            "pseudo_label_power": float(cfg.pseudo_label_power),
            "pseudo_labels_shifted": self._teacher_bias is not None,
            "pseudo_label_shift_offered": len(teachers) > 1,
            "name_anchors": self._anchors_used(),
            "class_mix": {
                "trusted": bool(trusted),
                "shift_claimed": float(claimed),
                "estimator_error_on_labelled": float(error),
            },
            "cv_criterion": "out-of-fold Brier score, among candidates with no more out-of-fold "
            "errors than the labels alone"
            + (", rows weighted to the catalogue's class mix" if trusted else ""),
            "mix_criterion": cfg.mix_criterion,
            "group_folds": bool(cfg.group_folds),
            "mean_pool_copies_left_out_per_fold": held_out / max(1, len(fold_linear)),
            "pool_memory_offered": memory is not None,
            "pool_memory": False,
            "candidates": [
                {
                    "share": s,
                    "smoothing": a,
                    "prior_shift": strength,
                    "pseudo_labels_shifted": bool(u),
                    "cv_log_loss": c["cv_log_loss"],
                    "cv_brier": c["cv_brier"],
                    "cv_accuracy": c["cv_accuracy"],
                    "cv_accuracy_unweighted": c["cv_accuracy_unweighted"],
                    "linear_temperature": c["linear_temperature"],
                    "memory_temperature": c["memory_temperature"],
                    "weights": c["weights"],
                    **(
                        {"mean_pseudo_labels_per_fold": used[(s, a, u)] / len(fold_linear)}
                        if s
                        else {}
                    ),
                }
                for (s, a, u, strength), c in candidates.items()
            ],
        }
        self._pool_features = (features, x_labelled, x_pool, pool_emb)
        chosen = candidates[best]
        self._use_mix(chosen, self.self_training_share)
        figures = {
            "self_training_share": self.self_training_share,
            "pool_smoothing": self.pool_smoothing,
            "prior_shift": self.prior_shift,
            "cv_accuracy_self_trained": float(chosen["cv_accuracy"]),
            "cv_accuracy_self_trained_unweighted": float(chosen["cv_accuracy_unweighted"]),
            "cv_log_loss_self_trained": float(chosen["cv_log_loss"]),
            "cv_brier_self_trained": float(chosen["cv_brier"]),
        }
        return figures, pool_scores

    def _use_mix(self, candidate: dict[str, Any], share: float) -> None:
        """The members, temperatures and weights of a self-training `candidate` (its
        `score_candidate` figures; `share` of pseudo-labels). The memory is a member when
        it was offered and weighs something."""
        temperatures, _ = self._labels_only_mix  # type: ignore[misc]
        members = list(self._teacher_members)
        temperatures = np.array(temperatures, dtype=np.float64)
        temperatures[1] = float(candidate["linear_temperature"])
        weights = [float(w) for w in candidate["weights"]]
        if len(weights) > len(members):  # the memory was offered: its weight comes last
            members.append("memory")
            temperatures = np.append(temperatures, float(candidate["memory_temperature"]))
        self.members, self.member_temperatures = members, temperatures
        self.weights = np.array(weights, dtype=np.float64)
        # no pseudo-labels, nothing to remember (cross-validation gives it 0 there)
        if "memory" not in members or not (weights[-1] > 0 and share):
            self._drop_memory()
        elif self.self_training is not None:
            self.self_training["pool_memory"] = True

    def _drop_memory(self) -> None:
        """No memory member: its weight, if any, shared by the others in proportion (when
        no n-gram is rare enough to compare on, or no pool is left to rebuild it from)."""
        if "memory" in self.members:
            i = self.members.index("memory")
            dropped = self.weights[i]
            self.weights = np.delete(self.weights, i)
            if dropped > 0 and self.weights.sum() > 0:
                self.weights = self.weights / self.weights.sum()
            self.member_temperatures = np.delete(self.member_temperatures, i)
            self.members = [m for m in self.members if m != "memory"]
        self._memory = None
        if self.self_training is not None:
            self.self_training["pool_memory"] = False

    def _memory_folds(self, x):
        """The labelled and pool rows `x` on the memory's n-grams (`memory_columns`), unit
        rows, for cross-validation; None when no n-gram is rare enough."""
        keep = self.memory_columns(x)
        return unit_rows(x[:, keep]).tocsr() if len(keep) else None

    @staticmethod
    def _groups(texts: list[str], pool: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(product group per labelled title, per pool title), over both together."""
        from ..product_groups import product_groups

        titles = list(texts) + list(pool)
        # a token in 30 of 300 titles is no model number: a small catalogue joins by fewer
        groups = product_groups(titles, max_titles=min(30, max(2, len(titles) // 100)))
        return groups[: len(texts)], groups[len(texts) :]

    def _name_anchors(self, pool_scores: list[np.ndarray]) -> np.ndarray | None:
        """The names member's rows of `pool_scores` (`_member_scores`), which spreading
        starts from where the members agree (`selftrain.anchor_agreed_names`); None when
        the names are not a member or `name_anchors` is off."""
        if "names" not in self._teacher_members or not self.config.name_anchors:
            return None
        return pool_scores[self._teacher_members.index("names")]

    def _anchors_used(self) -> bool:
        """Whether the chosen pseudo-labels were spread from agreed names (raw shares are
        not spread, so anchors do not touch them)."""
        names = "names" in self._teacher_members
        return bool(self.config.name_anchors and names and self.pool_smoothing)

    def _apply_self_training(self, texts, y, pool_scores=None) -> None:
        """Pseudo-label the pool with the labels-only members fitted on every label (their
        `pool_scores`, computed here when not given; spread from the agreed names when
        spreading), and refit the linear member on the labels plus the chosen share of them."""
        from .selftrain import pseudo_labels, select_confident

        features, x_labelled, x_pool, pool_emb = self._pool_features
        temperatures, weights = self._labels_only_mix  # type: ignore[misc]
        assert self._unlabelled is not None
        if pool_scores is None:
            pool_scores = self._member_scores(self._unlabelled, pool_emb, self._teacher_members)
        pred, confidence = pseudo_labels(
            pool_scores,
            temperatures,
            weights,
            self._pool_graph,
            self.pool_smoothing,
            self._teacher_bias,
            self._name_anchors(pool_scores),
        )
        chosen = select_confident(pred, confidence, self.self_training_share)
        self._coef, self._intercept = self._fit_svc_with_pseudo_labels(
            x_labelled, y, x_pool[chosen], pred[chosen], confidence[chosen]
        )
        self._tfidf = features
        if "memory" in self.members:
            from scipy.sparse import vstack

            keep = self.memory_columns(vstack([x_labelled, x_pool]).tocsr())
            if not len(keep):  # a refit on other rows can leave no n-gram rare enough
                self._drop_memory()
            else:
                rows = vstack([x_labelled, x_pool[chosen]]).tocsr()
                titles = list(texts) + [self._unlabelled[i] for i in chosen]
                labels = np.concatenate([y, pred[chosen]])
                self._memory = PoolMemory.build(keep, rows, labels, titles)
        assert self.self_training is not None
        self.self_training["pseudo_labels"] = int(len(chosen))

    def use_candidate(self, candidate: dict[str, Any], texts, labels) -> None:
        """Switch to another of the self-training candidates cross-validation scored (an
        entry of `self_training["candidates"]`): its pseudo-labels, class shift and members'
        mix, the student refitted. `texts`, `labels`: the labelled products the model was
        fitted on. Only in the process that fitted it with unlabelled products (the pool
        stays in memory, it is not saved): for studying the choice
        (`benchmarks/fewshot_candidates.py`) or overriding it."""
        if self._pool_features is None or self._class_shift is None or not self._unlabelled:
            raise ConfigError(
                "use_candidate needs a fewshot model fitted with unlabelled products in this "
                "process"
            )
        index = {cid: i for i, cid in enumerate(self.labels)}
        texts = self.prepare(texts)
        y = np.array([index[label] for label in labels])
        self._fit_members(texts, y, self.embed(texts), self.name_prototypes())  # the teacher
        self.self_training_share = float(candidate["share"])
        self.pool_smoothing = float(candidate["smoothing"])
        self.prior_shift = float(candidate["prior_shift"])
        self._teacher_bias = self._class_shift if candidate["pseudo_labels_shifted"] else None
        self._bias = (self.prior_shift * self._class_shift).astype(np.float32)
        self._use_mix(candidate, self.self_training_share)
        assert self.self_training is not None
        self.self_training.update(
            share=self.self_training_share,
            smoothing=self.pool_smoothing,
            prior_shift=self.prior_shift,
            pseudo_labels=0,
            pseudo_labels_shifted=self._teacher_bias is not None,
            name_anchors=self._anchors_used(),
        )
        if self.self_training_share:
            self._apply_self_training(texts, y)

    def _fit_members(self, texts, y, emb, names) -> None:
        self._prototypes = self._class_prototypes(emb, y, names, self.prior).astype(np.float32)
        self._tfidf, self._coef, self._intercept = self._fit_linear(texts, y)

    def _refit(self, texts, y, progress):
        # keep the prior, temperatures and weights cross-validation chose; refit the members
        self._fit_members(texts, y, self.embed(texts), self.name_prototypes())
        if self.self_training_share and self._unlabelled and self._pool_features:
            features = self._tfidf_features(min_df=2)
            x = features.fit_transform(list(texts) + self._unlabelled)
            pool_emb = self._pool_features[3]
            self._pool_features = (features, x[: len(texts)], x[len(texts) :], pool_emb)
            self._apply_self_training(texts, y)
        else:  # no pool in this process (a loaded model): the memory cannot follow the refit
            self._drop_memory()

    def _logits(self, texts):
        scores = self._member_scores(texts, self.embed(texts))
        pooled = sum(
            w * log_softmax(s, t) for w, s, t in zip(self.weights, scores, self.member_temperatures)
        )
        return pooled if self._bias is None else pooled + self._bias

    # -- persistence ----------------------------------------------------------------------
    def _manifest_extra(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.name,
            "embedding_dim": self.encoder.dim,
            "encoder_files": sorted(self.encoder.files()),
            "prior": self.prior,
            "member_temperatures": [float(t) for t in self.member_temperatures],
            "members": list(self.members),
            "weights": [float(w) for w in self.weights],
            "self_training": self.self_training,
        }

    def _save(self, directory: Path) -> None:
        import shutil

        from safetensors.numpy import save_file

        assert self._tfidf is not None and self._prototypes is not None
        assert ("memory" in self.members) == (self._memory is not None), "memory out of step"
        for name, source in self.encoder.files().items():
            shutil.copyfile(source, directory / name)
        vocab = json.dumps(self._tfidf.vocabulary(), ensure_ascii=False)
        (directory / "vocabulary.json").write_text(vocab, "utf-8")
        save_file(
            {
                **self._tfidf.idf_tensors(),
                "prototypes": np.ascontiguousarray(self._prototypes, dtype=np.float32),
                "coef": np.ascontiguousarray(self._coef, dtype=np.float32),
                "intercept": np.ascontiguousarray(self._intercept, dtype=np.float32),
                "bias": np.ascontiguousarray(
                    self._bias if self._bias is not None else np.zeros(len(self.labels)),
                    dtype=np.float32,
                ),
                **(self._memory.tensors() if self._memory is not None else {}),
            },
            str(directory / "fewshot.safetensors"),
        )

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.numpy import load_file

        cfg = self.config
        self._saved = directory
        tensors = load_file(str(directory / "fewshot.safetensors"))
        vocab = json.loads((directory / "vocabulary.json").read_text("utf-8"))
        self._tfidf = TfidfFeatures.restore(
            cfg.word_ngrams, cfg.char_ngrams, vocab, tensors, cfg.cjk_char_ngrams
        )
        self._prototypes = tensors["prototypes"]
        self._coef, self._intercept = tensors["coef"], tensors["intercept"]
        self._bias = tensors.get("bias")  # models saved before self-training have none
        self.prior = float(manifest["prior"])
        self.member_temperatures = np.array(manifest["member_temperatures"])
        self.weights = np.array(manifest["weights"])
        # models saved before the list: prototypes, linear and (a third weight) names
        default = ["prototypes", "linear", "names"][: len(self.weights)]
        self.members = list(manifest.get("members", default))
        self._teacher_members = [m for m in self.members if m != "memory"]
        if "memory" in self.members:
            self._memory = PoolMemory.from_tensors(tensors)
        self.self_training = manifest.get("self_training")
        self.self_training_share = float((self.self_training or {}).get("share", 0.0))
        self.pool_smoothing = float((self.self_training or {}).get("smoothing", 0.0))
        self.prior_shift = float((self.self_training or {}).get("prior_shift", 0.0))
