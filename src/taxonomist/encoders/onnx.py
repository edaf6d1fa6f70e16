"""A sentence-transformers model run by ONNX Runtime, its weights quantised to int8.

Why: on a CPU, encoding titles is what bounds a frozen-encoder model's throughput. Exporting
the transformer with its pooling and normalisation to ONNX and quantising the matrix
multiplications to int8 (dynamic quantisation: weights int8 ahead of time, activations per
input, which is why each text runs alone) runs the packaged MiniLM about twice as fast on 2
cores. The vectors differ a little from the float ones, so this encoder has a name of its
own: the embedding cache never mixes the two, and a head trained on one is used with the
same one.

The exported graph is built once per model directory and kept in the cache folder
(`onnx/<key>/`), keyed by the directory, its weights' size and time, and the library versions.
A trained model carries a copy (`files`), so it encodes the same on a machine with other
versions, and needs onnxruntime there but not the exporter (onnx, onnxscript).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .base import Encoder, Role
from .cache import default_cache_dir

logger = logging.getLogger(__name__)

FORMAT = 2  # bump when the exported graph changes, so old exports are rebuilt


REQUIRED = ("onnxruntime", "onnx", "onnxscript")  # to run the graph, and to export it once


def onnx_available() -> bool:
    """Whether everything this encoder needs is installed (found, not imported)."""
    return all(importlib.util.find_spec(name) for name in REQUIRED)


def _require_onnx(names: tuple[str, ...] = REQUIRED) -> Any:
    """Import `names` and return onnxruntime; running a graph already exported needs it only."""
    try:
        onnxruntime, *_ = [importlib.import_module(name) for name in names]
    except ImportError:
        raise ModelError(
            f"the int8 encoder needs {', '.join(names)}; install Taxonomist with the 'onnx' "
            "extra: pip install 'taxonomist[onnx]'"
        ) from None
    return onnxruntime


def _pooling_mode(model_dir: Path) -> str:
    config = model_dir / "1_Pooling" / "config.json"
    if not config.exists():
        return "mean"
    settings = json.loads(config.read_text())
    if settings.get("pooling_mode_mean_tokens"):
        return "mean"
    if settings.get("pooling_mode_cls_token"):
        return "cls"
    raise ModelError(f"{config}: only mean or CLS pooling can be exported to ONNX")


def _export_key(model_dir: Path, quantize: bool) -> str:
    from ..persistence import package_version  # as model manifests record them

    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    stamp = [(w.name, w.stat().st_size, int(w.stat().st_mtime)) for w in weights]
    raw = json.dumps(
        [
            FORMAT,
            str(model_dir.resolve()),
            stamp,
            quantize,
            package_version("torch"),
            package_version("transformers"),
        ]  # fmt: skip
    )
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def export_onnx(model_dir: Path, target: Path, *, quantize: bool = True) -> Path:
    """Write `model_dir`'s transformer + pooling + L2 normalisation as one ONNX graph
    (int8 weights when `quantize`) to `target`, atomically."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    mode = _pooling_mode(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            if mode == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = tokenizer(["a product title", "another one, longer than the first"],
                       padding=True, return_tensors="pt")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    # per-process names: two processes exporting at once must not write into one file
    float_path = target.with_name(f"{target.stem}.{_unique()}.fp32.onnx")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    logger.info("exporting %s to ONNX (one-off, ~1 min)", model_dir)
    # the exporter and the quantiser narrate their work; a one-off export need not
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled(),
            (sample["input_ids"], sample["attention_mask"]),
            str(float_path),
            dynamo=True,
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
            external_data=False,
            verbose=False,
        )
    tmp = target.with_name(f"{target.name}.{_unique()}.tmp")
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # per-channel scales: cosine to the float vectors 0.99 (per-tensor: 0.96), same speed
        root = logging.getLogger()
        # the quantiser logs its progress on the root logger; drop only those records (a
        # filter, not a level change: other threads' logging is left as it is)
        quiet = _DropBelowWarningFrom("onnxruntime")
        root.addFilter(quiet)
        try:
            quantize_dynamic(
                str(float_path), str(tmp), weight_type=QuantType.QInt8, per_channel=True
            )
        finally:
            root.removeFilter(quiet)
        float_path.unlink()
    else:
        float_path.rename(tmp)
    os.replace(tmp, target)
    return target


class OnnxEncoder(Encoder):
    """A sentence-transformers directory (mean or CLS pooling) through ONNX Runtime.

    Args:
        model_dir: the sentence-transformers directory (its tokenizer is used as is).
        name: cache key for its embeddings (a digest of the graph is appended); must differ
            from the float model's.
        quantize: int8 weights (the point of this encoder); False exports float32.
        max_length: longer texts are cut to this many tokens, as sentence-transformers does.
        threads: ONNX Runtime intra-op threads (default: what the runtime picks).
        cache_dir: where exports are kept (default: the embedding cache's folder).
        graph: an export to run instead, e.g. the copy a model directory carries (`files`);
            nothing is exported then, so onnx and onnxscript are not needed.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str,
        quantize: bool = True,
        max_length: int = 256,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        graph: str | Path | None = None,
    ) -> None:
        ort = _require_onnx() if graph is None else _require_onnx(("onnxruntime",))
        from transformers import AutoTokenizer

        self.model_dir = Path(model_dir)
        self.max_length = max_length
        self.languages = frozenset({"en"})
        if graph is not None:
            path = Path(graph)
            if not path.is_file():
                raise ModelError(f"ONNX graph {path} not found")
        else:
            folder = Path(cache_dir or default_cache_dir()) / "onnx"
            path = folder / _export_key(self.model_dir, quantize) / "model.onnx"
            if not path.exists():
                try:
                    export_onnx(self.model_dir, path, quantize=quantize)
                except Exception as exc:  # noqa: BLE001 - exporter failures vary by version
                    raise ModelError(
                        f"cannot export {self.model_dir} to ONNX: {exc}; use the float encoder "
                        "('minilm', or the directory itself) instead"
                    ) from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - a damaged export is rebuilt next time
            if graph is not None:  # never delete a model directory's copy
                raise ModelError(f"cannot load the ONNX graph {path}: {exc}") from None
            path.unlink(missing_ok=True)
            raise ModelError(
                f"cannot load the ONNX export {path}: {exc}; run again to rebuild"
            ) from None
        self.graph_path = path
        # exports differ with library versions: the embedding cache must tell them apart
        self.name = f"{name}:{hashlib.sha1(path.read_bytes()).hexdigest()[:12]}"
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        width = self._session.get_outputs()[0].shape[-1]  # a name when the graph left it open
        self.dim = width if isinstance(width, int) else self._probe_dim()

    def files(self) -> dict[str, Path]:
        # the export depends on library versions; carrying it keeps a model's vectors fixed
        return {"encoder.onnx": self.graph_path}

    def _probe_dim(self) -> int:
        return int(
            self._encode(["x"], role=Role.PRODUCT, batch_size=1, show_progress=False)[0].size
        )

    def _encode(self, texts: list[str], *, role: Role, batch_size: int, show_progress: bool):
        """One text per run, whatever `batch_size` asks.

        Dynamic quantisation scales activations by the whole input tensor, padding included,
        so in a batch a title's vector would depend on its batch-mates (components moved by up
        to 0.03 between a batch of 5 and one of 30) and a model's predictions on how a file
        happened to be batched. Run alone, each vector is a function of its text. It costs
        some speed: on 2,000 pricerunner titles (2 cores) 409-429 titles/s against 471-565/s
        in batches of 32.
        """
        from tqdm.auto import tqdm

        tokens = self._tokenizer(texts, truncation=True, max_length=self.max_length)
        vectors = []
        for ids in tqdm(tokens["input_ids"], disable=not show_progress, desc="encoding"):
            input_ids = np.asarray([ids], dtype=np.int64)
            feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
            vectors.append(self._session.run(None, feeds)[0][0])
        return np.vstack(vectors).astype(np.float32)


class _DropBelowWarningFrom(logging.Filter):
    def __init__(self, package: str) -> None:
        super().__init__()
        self.package = package

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or self.package not in record.pathname


def _unique() -> str:
    # process id alone collides when two threads of one process export at once
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
