"""`fewshot`: a classifier for catalogues with a handful of labelled products per category.

With 5-20 examples per category a network head overfits and a validation split would eat a
third of the labels. This kind starts from what zero-shot knows, the category names, and
lets the examples move it:

- prototypes: each category's vector is the sum of its examples' embeddings plus `prior`
  times its zero-shot prototype (the embedded name and path, `taxonomist.zeroshot`), so a
  category with no or few examples leans on its name and one with many on its examples;
  a product scores the cosine to each prototype.
- linear: TF-IDF n-grams + a linear SVM on the examples (the words titles share).

The prior strength and the two members' temperatures and weights are chosen by
cross-validation on the labelled products themselves (out-of-fold scores, every example
scored by a model that never saw it), so no row is held back: all labels train the final
model. Persisted without pickle: prototypes, TF-IDF vocabularies, weights in safetensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import fit_temperature, log_softmax
from ..encoders import Encoder, EncoderSet, Role, build_cached_encoder, normalize
from ..errors import ConfigError
from .base import Model, Progress
from .config import check_ngram_ranges, check_positive, config_from_dict
from .ensemble import fit_weights
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
    seed: fold assignment.
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

    def __post_init__(self) -> None:
        if not self.priors or any(p < 0 for p in self.priors):
            raise ConfigError(f"fewshot.priors must be non-negative numbers, got {self.priors}")
        if self.folds < 2:
            raise ConfigError(f"fewshot.folds must be >= 2, got {self.folds}")
        check_positive("fewshot", C=self.C, weight_step=self.weight_step)
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


class FewShotModel(Model):
    kind = "fewshot"
    config_class = FewShotConfig

    def __init__(
        self, taxonomy, config: FewShotConfig | None = None, encoder: Encoder | None = None
    ) -> None:
        super().__init__(taxonomy, config)
        self._encoder = encoder
        self._saved: Path | None = None
        self._prototypes: np.ndarray | None = None  # (labels, dim), unit rows
        self._tfidf: TfidfFeatures | None = None
        self._coef: np.ndarray | None = None
        self._intercept: np.ndarray | None = None
        self.prior: float = 1.0
        self.member_temperatures = np.ones(2)
        self.weights = np.array([0.5, 0.5])

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

    # -- the two members ------------------------------------------------------------------
    @staticmethod
    def _class_prototypes(
        emb: np.ndarray, y: np.ndarray, names: np.ndarray, prior: float
    ) -> np.ndarray:
        sums = prior * names
        np.add.at(sums, y, emb)
        return normalize(sums)

    def _fit_linear(self, texts: list[str], y: np.ndarray):
        """(features, coef, intercept) with a row for every label (zero for absent ones)."""
        from sklearn.svm import LinearSVC

        cfg = self.config
        tfidf = TfidfFeatures(cfg.word_ngrams, cfg.char_ngrams, cjk_char_ngrams=cfg.cjk_char_ngrams)
        x = tfidf.fit_transform(texts)
        n_labels = len(self.labels)
        coef = np.zeros((n_labels, x.shape[1]), dtype=np.float32)
        intercept = np.full(n_labels, -1.0, dtype=np.float32)  # a class never seen: below
        present = np.unique(y)
        if len(present) == 1:
            coef[present[0]], intercept[present[0]] = 0.0, 1.0
            return tfidf, coef, intercept
        svc = LinearSVC(C=cfg.C, max_iter=5000).fit(x, y)
        if len(present) == 2:  # sklearn keeps one row for two classes
            coef[present[1]], coef[present[0]] = svc.coef_[0] / 2, -svc.coef_[0] / 2
            intercept[present[1]] = svc.intercept_[0] / 2
            intercept[present[0]] = -svc.intercept_[0] / 2
        else:
            coef[svc.classes_] = svc.coef_
            intercept[svc.classes_] = svc.intercept_
        return tfidf, coef, intercept

    def _member_scores(self, texts: list[str], emb: np.ndarray) -> list[np.ndarray]:
        assert self._prototypes is not None and self._tfidf is not None
        linear = np.asarray(self._tfidf.transform(texts) @ self._coef.T) + self._intercept
        return [emb @ self._prototypes.T, linear]

    # -- fitting --------------------------------------------------------------------------
    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None):
        cfg = self.config
        emb = self.embed(texts)
        names = self.name_prototypes()
        counts = np.bincount(y, minlength=len(self.labels))
        folds = int(min(cfg.folds, max(2, np.max(counts))))
        fold = assign_folds(y, folds, cfg.seed)
        # out-of-fold scores: each example scored by members fitted without its fold
        oof_proto = {p: np.zeros((len(y), len(self.labels))) for p in cfg.priors}
        oof_linear = np.zeros((len(y), len(self.labels)))
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
            if progress:
                progress("cross-validation", f + 1, folds)
        rows = np.arange(len(y))
        scored = {}
        for p in cfg.priors:
            t = fit_temperature(oof_proto[p], y)
            scored[p] = (float(-log_softmax(oof_proto[p], t)[rows, y].mean()), t)
        self.prior = min(scored, key=lambda p: scored[p][0])
        t_linear = fit_temperature(oof_linear, y)
        self.member_temperatures = np.array([scored[self.prior][1], t_linear])
        members = [
            log_softmax(oof_proto[self.prior], self.member_temperatures[0]),
            log_softmax(oof_linear, t_linear),
        ]
        self.weights = fit_weights(members, y, cfg.weight_step)
        pooled = sum(w * m for w, m in zip(self.weights, members))
        cv_accuracy = float((np.asarray(pooled).argmax(1) == y).mean())
        self._fit_members(texts, y, emb, names)
        row: dict[str, float] = {
            "epoch": 1,
            "cv_accuracy": cv_accuracy,
            "cv_accuracy_prototypes": float((members[0].argmax(1) == y).mean()),
            "cv_accuracy_linear": float((members[1].argmax(1) == y).mean()),
            "prior": float(self.prior),
            "weight_prototypes": float(self.weights[0]),
        }
        if valid_texts:
            row["valid_accuracy"] = float((self._logits(valid_texts).argmax(1) == valid_y).mean())
        return [row]

    def _fit_members(self, texts, y, emb, names) -> None:
        self._prototypes = self._class_prototypes(emb, y, names, self.prior).astype(np.float32)
        self._tfidf, self._coef, self._intercept = self._fit_linear(texts, y)

    def _refit(self, texts, y, progress):
        # keep the prior, temperatures and weights cross-validation chose; refit the members
        self._fit_members(texts, y, self.embed(texts), self.name_prototypes())

    def _logits(self, texts):
        scores = self._member_scores(texts, self.embed(texts))
        return sum(
            w * log_softmax(s, t) for w, s, t in zip(self.weights, scores, self.member_temperatures)
        )

    # -- persistence ----------------------------------------------------------------------
    def _manifest_extra(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.name,
            "embedding_dim": self.encoder.dim,
            "encoder_files": sorted(self.encoder.files()),
            "prior": self.prior,
            "member_temperatures": [float(t) for t in self.member_temperatures],
            "weights": [float(w) for w in self.weights],
        }

    def _save(self, directory: Path) -> None:
        import shutil

        from safetensors.numpy import save_file

        assert self._tfidf is not None and self._prototypes is not None
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
        self.prior = float(manifest["prior"])
        self.member_temperatures = np.array(manifest["member_temperatures"])
        self.weights = np.array(manifest["weights"])
