"""The torch-free runtime for exported models: ONNX Runtime, `tokenizers`, numpy, scipy, and
PIL for photos.

`OnnxModel` is a `Model` of kind `onnx`, so `load_model(export_dir)` (and `classify --model
export_dir`) load it like any model directory, and predictions come out through the same
calibration and taxonomy decoding as the original's. Importing this module, loading an
export and predicting import neither torch nor transformers. An export of an `image` or
`fusion` model takes products (`Item`s: title and photo path), as its original does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import log_softmax
from ..encoders.image import FakeImageEncoder, ImageEncoder
from ..errors import ModelError
from ..items import Item, as_items
from ..models.base import Model
from ..models.config import config_from_dict


@dataclass(frozen=True)
class OnnxConfig:
    """An export has no settings of its own: everything is in its graph.json."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OnnxConfig:
        return config_from_dict(cls, data)


def _session(path: Path, *, one_thread: bool = False) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            "exported models need onnxruntime; pip install 'taxonomist[onnx]'"
        ) from None
    if not path.is_file():
        raise ModelError(f"{path} is missing from the export")
    options = ort.SessionOptions()
    if one_thread:
        options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _Encoder:
    """Tokenizer + ONNX transformer graph (pooling and normalisation inside), or the fake."""

    def __init__(self, directory: Path, spec: dict[str, Any]) -> None:
        self.spec = spec
        if spec["type"] == "fake":
            from ..encoders.fake import FakeEncoder

            self._fake: Any = FakeEncoder(int(spec["dim"]))
            return
        from tokenizers import Tokenizer

        self._fake = None
        self._session = _session(directory / "encoder.onnx")
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=int(spec["max_length"]))

    def encode(self, texts: list[str]) -> np.ndarray:
        from ..encoders.base import normalize

        if self._fake is not None:
            return self._fake.encode(texts)
        ids = [e.ids for e in self._tokenizer.encode_batch(texts)]
        if self.spec.get("one_per_run"):
            batches = [[row] for row in ids]
        else:
            batches = [ids[i : i + 64] for i in range(0, len(ids), 64)]
        out = []
        for batch in batches:
            width = max(len(row) for row in batch)
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, row in enumerate(batch):
                input_ids[r, : len(row)] = row
                mask[r, : len(row)] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            out.append(self._session.run(None, feeds)[0])
        return normalize(np.vstack(out).astype(np.float32))


class _ImageEncoder(ImageEncoder):
    """The exported backbone behind the torch encoder's own decoding, preprocessing,
    masking and normalisation (inherited, PIL and numpy only); no cache."""

    def __init__(self, directory: Path, spec: dict[str, Any]) -> None:
        super().__init__(f"efficientnet-{spec['variant']}", size=int(spec["size"]), fit=spec["fit"])
        self.name = spec["name"]
        self._session = _session(directory / "image_encoder.onnx")

    @property
    def net(self) -> Any:
        raise ModelError("an exported image encoder has no torch network")

    def _encode(self, paths, batch_size, show_progress):
        results: list[np.ndarray | None] = [None] * len(paths)
        for start in range(0, len(paths), batch_size):
            arrays, rows = self._pixels(paths, range(start, min(start + batch_size, len(paths))))
            if arrays:
                pooled = self._session.run(None, {"pixels": np.stack(arrays)})[0]
                for i, vector in zip(rows, pooled):
                    results[i] = vector.astype(np.float32)
        return results


def _image_encoder(directory: Path, spec: dict[str, Any]) -> ImageEncoder:
    if spec["type"] == "fake":
        return FakeImageEncoder()
    if spec["type"] != "efficientnet":
        raise ModelError(f"unknown image encoder type {spec['type']!r} in the export")
    return _ImageEncoder(directory, spec)


def sparse_feeds(matrix: Any) -> dict[str, np.ndarray]:
    """A scipy sparse matrix as the inputs of `graphs.sparse_linear`'s scoring graph."""
    coo = matrix.tocoo()
    return {
        "rows": coo.row.astype(np.int64)[:, None],
        "columns": coo.col.astype(np.int64),
        "values": coo.data.astype(np.float32),
        "row_count": np.array([matrix.shape[0]], dtype=np.int64),
    }


class _Part:
    """One node of graph.json: its logits for a list of products (`Item`s); text kinds
    read their titles."""

    def __init__(self, root: Path, node: dict[str, Any]) -> None:
        self.kind = node["kind"]
        self.temperature = float(node["temperature"])
        directory = root / node["dir"]
        self.sees_images = False
        if self.kind == "linear":
            from safetensors.numpy import load_file

            from ..models.tfidf import TfidfFeatures

            vocab = json.loads((directory / "vocabulary.json").read_text("utf-8"))
            self._tfidf = TfidfFeatures.restore(
                tuple(node["word_ngrams"]),
                tuple(node["char_ngrams"]),
                vocab,
                load_file(str(directory / "tfidf.safetensors")),
            )
            # one thread: ONNX Runtime's CPU ScatterND splits the updates among its threads
            # and adds into the output without locks, so two threads summing into the same
            # row (a product's n-grams straddling their split) lose one another's updates:
            # a row's logits came out wrong in a few percent of runs on a batch of ~20,000
            # non-zeros with 2 cores (onnxruntime 1.32). The gather and the scatter are
            # memory-bound and cheap; the original's sparse product is single-threaded too.
            self._scoring = _session(directory / "scoring.onnx", one_thread=True)
        elif self.kind == "knn":
            from ..models import load_model

            self._knn = load_model(directory)
        elif self.kind == "head":
            self._encoder = _Encoder(directory, node["encoder"])
            self._head = _session(directory / "head.onnx")
        elif self.kind == "ensemble":
            self.weights = np.asarray(node["weights"], dtype=np.float64)
            self.members = [_Part(root, m) for m in node["members"]]
            self.sees_images = any(m.sees_images for m in self.members)
            # as `EnsembleModel`: the threshold (None: no cascade, e.g. an export of format
            # 1), the cheap members' indices, and `cascade`, on when trained with it
            cascade = node.get("cascade")
            self.cascade_threshold = None if not cascade else float(cascade["threshold"])
            self.cheap = [] if not cascade else [int(i) for i in cascade["cheap"]]
            self.cascade = bool(cascade and cascade["default"])
            self.cascade_stats = {"cheap": 0, "encoded": 0}
        elif self.kind == "image":
            from safetensors.numpy import load_file

            self.sees_images = True
            self.image_encoder = _image_encoder(directory, node["image_encoder"])
            self._head = _session(directory / "head.onnx")
            self.log_prior = load_file(str(directory / "prior.safetensors"))["log_prior"]
        elif self.kind == "fusion":
            self.sees_images = True
            self._fusion = _Fusion(root, directory, node)
        else:
            raise ModelError(f"unknown part kind '{self.kind}' in the export's graph.json")

    def image_logits(self, x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """As `ImageModel.logits_from`: the class prior for rows without a photo."""
        out = np.tile(self.log_prior, (len(x), 1))
        if ok.any():
            out[ok] = self._head.run(None, {"x": x[ok]})[0]
        return out

    def logits(self, items: list[Item]) -> np.ndarray:
        if self.kind == "image":
            return self.image_logits(*self.image_encoder.encode([it.image for it in items]))
        if self.kind == "fusion":
            return self._fusion.logits(items)
        if self.kind == "ensemble":
            return self._ensemble_logits(items)
        texts = [it.text for it in items]
        if self.kind == "linear":
            feeds = sparse_feeds(self._tfidf.transform(texts))
            return self._scoring.run(None, feeds)[0].astype(np.float64)
        if self.kind == "knn":
            return self._knn._logits(texts)
        x = self._encoder.encode(texts)
        return self._head.run(None, {"x": x})[0].astype(np.float64)

    def _member_logp(self, index: int, items: list[Item]) -> np.ndarray:
        member = self.members[index]
        return log_softmax(member.logits(items), member.temperature)

    def _ensemble_logits(self, items: list[Item]) -> np.ndarray:
        """`models.ensemble.EnsembleModel._logits`: the same `pool_members` (cascade included)."""
        from ..models.ensemble import pool_members

        on = self.cascade and self.cascade_threshold is not None
        return pool_members(
            items,
            self.weights,
            self._member_logp,
            cheap=self.cheap if on else [],
            threshold=self.cascade_threshold if on else None,
            temperature=self.temperature,
            stats=self.cascade_stats,
        )


class _Fusion:
    """`models.fusion.FusionModel._logits`, over exported parts: the late members'
    log-probabilities (the image member's prior divided out), the gated network's, and the
    same pooling function."""

    def __init__(self, root: Path, directory: Path, node: dict[str, Any]) -> None:
        self.mode = node["mode"]
        self.late, self.early = self.mode in ("late", "both"), self.mode in ("early", "both")
        self.weights = np.asarray(node["weights"], dtype=np.float64)
        self.weights_without_image = np.asarray(node["weights_without_image"], dtype=np.float64)
        self.correction = float(node["image_prior_correction"])
        self.members = [_Part(root, m) for m in node["members"]]
        if self.late:
            self.text_part, self.image_part = self.members
            self.image_encoder = self.image_part.image_encoder
        if self.early:
            self.stacks = bool(node["stacks"])
            self.text_encoder = _Encoder(directory, node["text_encoder"])
            if not self.late:
                self.image_encoder = _image_encoder(directory, node["image_encoder"])
            self._net = _session(directory / "fusion.onnx")

    def logits(self, items: list[Item]) -> np.ndarray:
        from ..models.fusion import availability, pool_members

        logps: list[np.ndarray] = []
        text_probs = None
        image = self.image_encoder.encode([it.image for it in items], batch_size=64)
        if self.late:
            text_logp = log_softmax(self.text_part.logits(items), self.text_part.temperature)
            image_logp = log_softmax(
                self.image_part.image_logits(*image), self.image_part.temperature
            )
            image_logp = image_logp - self.correction * self.image_part.log_prior
            logps += [text_logp, image_logp]
            text_probs = np.exp(text_logp)
        if self.early:
            early = self._early_logits(items, text_probs, image)
            if not self.late:
                return early
            logps.append(log_softmax(early))
        avail = availability(items, self.late, self.early)
        return pool_members(logps, avail, self.weights, self.weights_without_image, self.late)

    def _early_logits(self, items, text_probs, image) -> np.ndarray:
        text_ok = np.array([bool(it.text.strip()) for it in items])
        texts = [it.text if ok else "" for it, ok in zip(items, text_ok)]
        t = self.text_encoder.encode(texts)
        if self.stacks:
            t = np.concatenate([t, text_probs.astype(np.float32)], axis=1)
        x, image_ok = image
        feeds = {
            "t": (t * text_ok[:, None].astype(np.float32)).astype(np.float32),
            "i": x.astype(np.float32),
            "has_text": text_ok.astype(np.float32)[:, None],
            "has_image": image_ok.astype(np.float32)[:, None],
        }
        return self._net.run(None, feeds)[0].astype(np.float64)


class OnnxModel(Model):
    """An exported model (see `taxonomist.export`); predicts only."""

    kind = "onnx"
    config_class = OnnxConfig

    def __init__(self, taxonomy, config: OnnxConfig | None = None) -> None:
        super().__init__(taxonomy, config)
        self._root: _Part | None = None
        self.source: dict[str, Any] = {}

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        node = json.loads((directory / "graph.json").read_text("utf-8"))
        self._root = _Part(directory, node)
        self.source = manifest.get("source", {})
        # an export of a kind that sees photos takes products, as its original did
        self.uses_images = self._root.sees_images  # type: ignore[misc]

    # The root ensemble's cascade, as an `EnsembleModel` exposes its own, so that
    # `classifier.set_cascade` (classify --cascade/--no-cascade, batch jobs) reaches an export
    # as it reaches the original.
    @property
    def cascade_threshold(self) -> float | None:
        return getattr(self._root, "cascade_threshold", None)

    @property
    def cascade(self) -> bool:
        return bool(getattr(self._root, "cascade", False))

    @cascade.setter
    def cascade(self, on: bool) -> None:
        if self._root is None or self._root.kind != "ensemble":
            if not on:  # turning off what is not there is fine, as `set_cascade` has it
                return
            kind = self._root.kind if self._root is not None else "unloaded"
            raise ModelError(f"a cascade needs an exported ensemble, not a '{kind}' model")
        self._root.cascade = bool(on)

    @property
    def cascade_stats(self) -> dict[str, int] | None:
        """Rows answered by each stage of the root ensemble's cascade (None: no ensemble)."""
        return getattr(self._root, "cascade_stats", None)

    def _logits(self, inputs):
        assert self._root is not None
        return self._root.logits(as_items(inputs))

    def _fit(self, texts, y, valid_texts, valid_y, progress):
        raise ModelError("an exported model predicts only; train the original and export again")

    def _save(self, directory: Path) -> None:
        raise ModelError("an exported model is saved by `taxonomist export`, not re-saved")
