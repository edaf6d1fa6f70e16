"""What a batch job classifies with, built the same way in this process and in each Ray
worker, and the one entry point the CLI calls for both engines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import ColumnSpec
from ..data.readers import BadRow, Product
from ..errors import ConfigError
from ..predictions import Predictions
from .runner import BatchOutcome, run_local

if TYPE_CHECKING:
    from ..classifier import Classifier

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class JobSpec:
    """Everything that decides a job's predictions; small and picklable, so a Ray worker
    rebuilds the same classifier from it.

    Args:
        model / store + name: a trained model (directory, or a store's current version);
            neither: zero-shot into `taxonomy` with `encoder`.
        zero_shot_state: the prototypes adapted once on the driver
            (`Classifier.zero_shot_state`), shipped with the spec so that workers never
            re-adapt on their own partition.
        cache: use the on-disk embedding cache (off by default: see `batch.runner`).
    """

    model: str | None = None
    store: str | None = None
    name: str | None = None
    taxonomy: str | None = None
    encoder: str = "auto"
    columns: ColumnSpec = ColumnSpec()
    top_k: int = 1
    min_confidence: float | None = None
    language: str = "en"
    device: str = "auto"
    cascade: bool | None = None
    adapt: bool = True
    cache: bool = False
    zero_shot_state: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        from ..classifier import check_options

        check_options(self.top_k, self.min_confidence, self.language)
        if self.columns.image_column:
            raise ConfigError("batch jobs classify text; --image-column is not supported there")

    @property
    def trained(self) -> bool:
        return self.model is not None or self.store is not None or self.name is not None

    def settings(self) -> dict[str, Any]:
        """The choices besides model and input that change predictions (checked on resume)."""
        return {
            "top_k": self.top_k,
            "min_confidence": self.min_confidence,
            "language": self.language,
            "cascade": self.cascade,
        }


def load(spec: JobSpec) -> Classifier:
    """The classifier `spec` describes (zero-shot: with its shipped state, if any)."""
    from ..classifier import load_classifier
    from ..predictions import check_language

    clf = load_classifier(
        spec.model,
        store=spec.store,
        name=spec.name,
        taxonomy=spec.taxonomy,
        encoder=spec.encoder,
        device=spec.device,
        use_cache=spec.cache,
        columns=spec.columns,
        zero_shot=None if spec.trained else {"adapt": spec.adapt},
        cascade=spec.cascade,
    )
    # as `classify` on a file: a language the taxonomy has no names in is refused before
    # any work (a Classifier would answer in the primary names, with a warning)
    check_language(clf.taxonomy, spec.language)
    if not spec.trained and spec.zero_shot_state is not None:
        clf = clf.with_zero_shot_state(spec.zero_shot_state)
    return clf


def predictor(spec: JobSpec, clf: Classifier) -> Callable[[list[Product]], Predictions]:
    """Products -> predictions as `classify` makes them (a trained model's routing
    thresholds flag `needs_review`, as in `service.classify_file`)."""
    from ..routing import route

    routing = clf.model.routing if clf.model is not None else None

    def predict(products: list[Product]) -> Predictions:
        preds = clf.predict_products(
            products, top_k=spec.top_k, min_confidence=spec.min_confidence, language=spec.language
        )
        return route(preds, routing) if routing is not None else preds

    return predict


def writes_review(spec: JobSpec, clf: Classifier) -> bool:
    """Whether rows can be flagged, so the output has `needs_review` and the backed-off
    suggestion columns (as `classify` writes them): a threshold asked for, or a trained
    model's routing thresholds. Both engines decide it here, so their columns agree."""
    return spec.min_confidence is not None or (
        clf.model is not None and getattr(clf.model, "routing", None) is not None
    )


def prepared(
    spec: JobSpec, input_path: Path, *, batch_size: int = 4096
) -> tuple[JobSpec, Classifier]:
    """The classifier for the job, zero-shot adapted once on the first `adapt_sample` texts
    of the input, and `spec` with that state attached (unchanged for a trained model)."""
    clf = load(spec)
    if spec.trained or not spec.adapt or spec.zero_shot_state is not None:
        return spec, clf
    from ..service import _adaptation_sample
    from ..zeroshot import ZeroShotConfig

    limit = ZeroShotConfig().adapt_sample
    sample: list[str] = []
    for path in _input_files(input_path):  # the first files of a folder, in order
        sample += _adaptation_sample(path, spec.columns, False, batch_size)
        if len(sample) >= limit:
            break
    clf = clf.adapt(sample[:limit])
    return replace(spec, zero_shot_state=clf.zero_shot_state()), clf


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
    spec, clf = prepared(spec, input_path)
    return run_local(
        input_path,
        out_dir,
        predictor(spec, clf),
        model_info=clf.identity.as_dict(),
        columns=spec.columns,
        fmt=fmt,
        top_k=spec.top_k,
        part_rows=part_rows,
        resume=resume,
        strict=strict,
        settings=spec.settings(),
        progress=progress,
        on_bad_row=on_bad_row,
        review=writes_review(spec, clf),
    )
