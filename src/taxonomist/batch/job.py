"""What a batch job classifies with, built the same way in this process and in each Ray
worker, and the one entry point the CLI calls for both engines."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data import ColumnSpec, ReadReport, read_products
from ..data.readers import BadRow, Product
from ..errors import ConfigError, DataError
from ..predictions import Predictions
from .runner import BatchOutcome, run_local

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class JobSpec:
    """Everything that decides a job's predictions; small and picklable, so a Ray worker
    rebuilds the same predictor from it.

    Args:
        model: a trained model directory (or an export); None: zero-shot into `taxonomy`.
        zero_shot_state: the adapted prototypes, computed once by `adapted_spec` and
            shipped with the spec, so workers never re-adapt on their own partition.
        cache: use the on-disk embedding cache (off by default: see `batch.runner`).
    """

    model: str | None = None
    taxonomy: str | None = "shopify"
    encoder: str = "auto"
    columns: ColumnSpec = ColumnSpec()
    top_k: int = 1
    min_confidence: float | None = None
    device: str = "auto"
    cascade: bool | None = None
    adapt: bool = True
    cache: bool = False
    zero_shot_state: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise DataError(f"top-k must be at least 1, got {self.top_k}")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise DataError(f"min-confidence must be in [0, 1], got {self.min_confidence}")
        if self.columns.image_column:
            raise ConfigError("batch jobs classify text; --image-column is not supported there")

    def settings(self) -> dict[str, Any]:
        """The choices besides model and input that change predictions (checked on resume)."""
        return {
            "top_k": self.top_k,
            "min_confidence": self.min_confidence,
            "cascade": self.cascade,
            "adapt": self.adapt if self.model is None else None,
            "encoder": self.encoder if self.model is None else None,
        }


def model_identity(spec: JobSpec) -> dict[str, Any]:
    """What a resumed job must find unchanged: the model directory's manifest digest (it
    records the training run), or the zero-shot taxonomy and encoder."""
    if spec.model is None:
        return {"zero_shot": spec.taxonomy, "encoder": spec.encoder}
    manifest = Path(spec.model) / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"{spec.model} is not a model directory (no manifest.json)")
    return {
        "model": str(Path(spec.model).resolve()),
        "digest": hashlib.sha256(manifest.read_bytes()).hexdigest(),
    }


def build_predict(spec: JobSpec) -> Callable[[list[Product]], Predictions]:
    """A function from products to predictions, as `spec` says."""
    from ..encoders import caching
    from ..service import model_inputs, set_cascade

    with caching(spec.cache):
        if spec.model is not None:
            from ..devices import check_device
            from ..models import load_model

            model = load_model(spec.model, check_device(spec.device))
            set_cascade(model, spec.cascade)

            def predict(products: list[Product]) -> Predictions:
                with caching(spec.cache):
                    return model.predict(
                        model_inputs(products, spec.columns),
                        [p.id for p in products],
                        top_k=spec.top_k,
                        min_confidence=spec.min_confidence,
                    )

            return predict
        clf = _zero_shot(spec)

    def predict_zero_shot(products: list[Product]) -> Predictions:
        with caching(spec.cache):
            preds = clf.predict(
                [p.text for p in products], [p.id for p in products], top_k=spec.top_k
            )
        if spec.min_confidence is not None:
            preds = preds.with_min_confidence(spec.min_confidence, clf.taxonomy)
        return preds

    return predict_zero_shot


def _zero_shot(spec: JobSpec) -> Any:
    from ..devices import check_device
    from ..service import build_zero_shot, resolve_taxonomy

    tax = resolve_taxonomy(spec.taxonomy, columns=spec.columns)
    clf = build_zero_shot(tax, spec.encoder, adapt=spec.adapt, device=check_device(spec.device))
    if spec.zero_shot_state is not None:
        clf.load_state(spec.zero_shot_state)
    return clf


def adapted_spec(spec: JobSpec, input_path: Path, *, batch_size: int = 4096) -> JobSpec:
    """`spec` with the zero-shot adaptation done once, on the first `adapt_sample` texts of
    the input, and its state attached (nothing to do for a trained model)."""
    from ..encoders import caching

    if spec.model is not None or not spec.adapt or spec.zero_shot_state is not None:
        return spec
    with caching(spec.cache):
        clf = _zero_shot(spec)
        limit = clf.config.adapt_sample
        sample: list[str] = []
        for paths in _input_files(input_path):
            for batch in read_products(
                paths, spec.columns, batch_size=batch_size, report=ReadReport(str(paths))
            ):
                sample.extend(p.text for p in batch)
                if len(sample) >= limit:
                    break
            if len(sample) >= limit:
                break
        clf.adapt(sample[:limit])
        return replace(spec, zero_shot_state=clf.state())


def _input_files(path: Path) -> list[Path]:
    from .inputs import input_files

    return input_files(path)


def classify_batch(
    input_path: str | Path,
    out_dir: str | Path,
    spec: JobSpec,
    *,
    fmt: str = "parquet",
    engine: str = "local",
    resume: bool = False,
    part_rows: int = 10_000,
    strict: bool = False,
    ray_address: str | None = None,
    concurrency: int = 2,
    batch_size: int = 512,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    progress: Callable[[int], None] | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
) -> BatchOutcome:
    """Classify a large input into a folder of part files, with the local runner (resumable)
    or on a Ray cluster. See `batch.runner` and `batch.ray_engine`."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")
    input_path = Path(input_path)
    if engine == "ray":
        from .ray_engine import run_ray

        if resume:
            raise ConfigError("--resume is for the local engine; a Ray job reruns whole")
        return run_ray(
            input_path,
            Path(out_dir),
            spec,
            fmt=fmt,
            address=ray_address,
            concurrency=concurrency,
            batch_size=batch_size,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
        )
    info = model_identity(spec)
    spec = adapted_spec(spec, input_path)
    return run_local(
        input_path,
        out_dir,
        build_predict(spec),
        model_info=info,
        columns=spec.columns,
        fmt=fmt,
        top_k=spec.top_k,
        part_rows=part_rows,
        resume=resume,
        strict=strict,
        settings=spec.settings(),
        progress=progress,
        on_bad_row=on_bad_row,
    )
