"""The torch-free runtime for exported models: ONNX Runtime, `tokenizers`, numpy, scipy.

`OnnxModel` is a `Model` of kind `onnx`, so `load_model(export_dir)` (and `classify --model
export_dir`) load it like any model directory, and predictions come out through the same
calibration and taxonomy decoding as the original's. Importing this module, loading an
export and predicting import neither torch nor transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import log_softmax
from ..errors import ModelError
from ..models.base import Model
from ..models.config import config_from_dict


@dataclass(frozen=True)
class OnnxConfig:
    """An export has no settings of its own: everything is in its graph.json."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OnnxConfig:
        return config_from_dict(cls, data)


def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            "exported models need onnxruntime; pip install 'taxonomist[onnx]'"
        ) from None
    if not path.is_file():
        raise ModelError(f"{path} is missing from the export")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


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


class _Part:
    """One node of graph.json: its logits for a list of texts."""

    def __init__(self, root: Path, node: dict[str, Any]) -> None:
        self.kind = node["kind"]
        self.temperature = float(node["temperature"])
        directory = root / node["dir"]
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
            self._scoring = _session(directory / "scoring.onnx")
        elif self.kind == "knn":
            from ..models import load_model

            self._knn = load_model(directory)
        elif self.kind == "head":
            self._encoder = _Encoder(directory, node["encoder"])
            self._head = _session(directory / "head.onnx")
        elif self.kind == "ensemble":
            self.weights = np.asarray(node["weights"], dtype=np.float64)
            self.members = [_Part(root, m) for m in node["members"]]
        else:
            raise ModelError(f"unknown part kind '{self.kind}' in the export's graph.json")

    def logits(self, texts: list[str]) -> np.ndarray:
        if self.kind == "linear":
            coo = self._tfidf.transform(texts).tocoo()
            feeds = {
                "rows": coo.row.astype(np.int64)[:, None],
                "columns": coo.col.astype(np.int64),
                "values": coo.data.astype(np.float32),
                "row_count": np.array([len(texts)], dtype=np.int64),
            }
            return self._scoring.run(None, feeds)[0].astype(np.float64)
        if self.kind == "knn":
            return self._knn._logits(texts)
        if self.kind == "head":
            x = self._encoder.encode(texts)
            return self._head.run(None, {"x": x})[0].astype(np.float64)
        return sum(
            w * log_softmax(m.logits(texts), m.temperature)
            for w, m in zip(self.weights, self.members)
            if w > 0
        )


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

    def _logits(self, texts):
        assert self._root is not None
        return self._root.logits(list(texts))

    def _fit(self, texts, y, valid_texts, valid_y, progress):
        raise ModelError("an exported model predicts only; train the original and export again")

    def _save(self, directory: Path) -> None:
        raise ModelError("an exported model is saved by `taxonomist export`, not re-saved")
