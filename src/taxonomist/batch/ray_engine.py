"""The Ray Data engine: the same job on a cluster (or a local Ray), written as Parquet.

Ray Data reads the input (CSV, JSONL or Parquet; a file, a folder or a glob) as strings,
`map_batches` runs a pool of actors that each build the predictor once from the job's
`JobSpec` (a trained model, or zero-shot with the prototypes adapted once on the driver and
shipped in the spec), and each actor validates rows exactly as the local reader does. Bad
rows come out with their reason in an `error` column (and no prediction), since a worker on
another machine cannot append to the driver's side file.

Output is written to a staging folder and moved into place only when every block has been
written, with a manifest marking the job complete: a failed job leaves no folder that looks
like a result.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigError, DataError, TaxonomistError
from .inputs import input_files
from .job import JobSpec, prepared, writes_review
from .runner import MANIFEST, BatchOutcome

logger = logging.getLogger(__name__)


def _import_ray() -> Any:
    # before the first import: no usage reporting, and listeners on loopback only
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # a local raylet must register within 30 s by default; on a busy small machine it often
    # does not, and the job fails before it starts
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("--engine ray needs Ray Data; pip install 'taxonomist[batch]'") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds, with the address, when nothing listens there (Ray's own client
    retries for a minute or more before it gives up)."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise ConfigError(f"--ray-address {address!r}: expected auto or ray://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc})"
        ) from None


def connect(address: str | None, concurrency: int) -> bool:
    """Join the cluster at `address`, or start a local Ray when None; True if this call
    started Ray (and so should stop it)."""
    ray = _import_ray()
    if address:
        _check_reachable(address)
    if ray.is_initialized():  # e.g. a driver script that called ray.init itself
        return False
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--ray-address {address}: cannot join ({exc})") from None
        return True
    # a CPU beside the actors' for reading and writing blocks, or the pool starves them
    try:
        ray.init(
            num_cpus=concurrency + 1,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except Exception as exc:  # noqa: BLE001 - Ray raises bare Exceptions on start-up failures
        ray.shutdown()
        raise ConfigError(f"a local Ray could not start: {_cause(exc)}") from None
    return True


class _Predictor:
    """One Ray actor: builds the predictor once, then classifies batches (pandas frames)."""

    def __init__(self, spec: JobSpec, text_columns: list[str], review: bool) -> None:
        from .job import load, predictor

        self.spec = spec
        self.text_columns = text_columns
        self.review = review
        self.predict = predictor(spec, load(spec))
        self.schema = _schema(spec.top_k, review)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from ..data.records import validate_record
        from ..data.writers import prediction_rows

        spec = self.spec
        products, errors = [], []
        paths = batch["path"].tolist() if "path" in batch else [""] * len(batch)
        records = batch.drop(columns=["path"], errors="ignore").to_dict("records")
        for path, record in zip(paths, records):
            # a missing cell reads as empty, as in the local reader
            record = {k: "" if v is None or v != v else str(v) for k, v in record.items()}
            try:
                products.append(
                    validate_record(
                        record, spec.columns, text_columns=self.text_columns, source=path
                    )
                )
            except DataError as exc:
                errors.append({"id": record.get(spec.columns.id_column, ""), "error": str(exc)})
        rows = (
            prediction_rows(self.predict(products), spec.top_k, review=self.review)
            if products
            else []
        )
        for row in rows:
            row["error"] = None
        # an explicit schema: every block alike, lists as lists (not pickled objects)
        return pa.Table.from_pylist(rows + errors, schema=self.schema)


def _schema(top_k: int, review: bool) -> Any:
    """The local writer's Parquet columns (the same names, in the same order), plus `error`
    (null on a classified row)."""
    import pyarrow as pa

    from ..data.writers import prediction_columns

    def arrow_type(name: str) -> Any:
        if name == "level_confidences":
            return pa.list_(pa.float64())
        if name == "needs_review":
            return pa.bool_()
        if name.rstrip("0123456789").rstrip("_").endswith("confidence"):
            return pa.float64()
        return pa.string()

    names = prediction_columns(top_k, review=review)
    return pa.schema([pa.field(n, arrow_type(n)) for n in [*names, "error"]])


def _header(files: list[Path], fmt: str) -> list[str]:
    """Column names across the input files (first line of each CSV, schema of Parquet, keys
    of the first JSONL record)."""
    import csv

    names: list[str] = []
    for file in files:
        if fmt in ("csv", "tsv"):
            with open(file, encoding="utf-8-sig", newline="") as handle:
                row = next(csv.reader(handle, delimiter="\t" if fmt == "tsv" else ","), [])
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                row = pq.read_schema(file).names
            except Exception as exc:  # noqa: BLE001 - any damage: one clear message
                raise DataError(f"unreadable Parquet file ({exc})", file=file) from None
        else:
            with open(file, encoding="utf-8") as handle:
                first = next((line for line in handle if line.strip()), "{}")
            try:
                row = list(json.loads(first))
            except ValueError as exc:
                raise DataError(f"first record is not JSON ({exc})", file=file) from None
        names += [n for n in row if n not in names]
    return names


def _read(ray: Any, files: list[Path], fmt: str, names: list[str]) -> Any:
    paths = [str(f) for f in files]
    if fmt in ("csv", "tsv"):
        import pyarrow as pa
        from pyarrow import csv as pacsv

        # every cell a string, as the local reader sees it ("00123" stays "00123")
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
        return ray.data.read_csv(
            paths, convert_options=convert, parse_options=parse, include_paths=True
        )
    if fmt == "parquet":
        return ray.data.read_parquet(paths, include_paths=True)
    return ray.data.read_json(paths, lines=True, include_paths=True)


def run_ray(
    input_spec: Path,
    out_dir: Path,
    spec: JobSpec,
    *,
    fmt: str = "parquet",
    address: str | None = None,
    concurrency: int = 2,
    batch_size: int = 512,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
) -> BatchOutcome:
    """Run the job on Ray and write Parquet parts plus a manifest into `out_dir`.

    Raises:
        ConfigError: an output folder that exists, a format other than Parquet, a cluster
            that does not answer, no id column.
        DataError: no input files, an unreadable one, or a failure while reading them.
    """
    from ..data.readers import detect_format

    started = time.perf_counter()
    if fmt != "parquet":
        raise ConfigError("--engine ray writes Parquet; use --format parquet")
    if concurrency < 1 or batch_size < 1:
        raise ConfigError("--concurrency and --batch-size must be at least 1")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir} exists and is not empty; a Ray job writes a new folder")
    files = input_files(input_spec)
    data_fmt = detect_format(files[0])
    names = _header(files, data_fmt)
    columns = spec.columns
    text_cols = [c for c in columns.text_columns if c in names]
    if not text_cols:
        raise DataError(
            f"none of the text columns {list(columns.text_columns)} is present; found "
            f"columns {names}. Name yours with --text-columns",
            file=input_spec,
        )
    if columns.id_column not in names:
        raise ConfigError(
            f"the Ray engine needs an id column ('{columns.id_column}'; found {names}): "
            "rows read in parallel have no line numbers to stand in for one"
        )
    started_ray = connect(address, concurrency)
    ray = _import_ray()
    staging = out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}")
    try:
        spec, clf = prepared(spec, input_spec)  # adapted once, here; workers get the state
        info = clf.identity.as_dict()
        review = writes_review(spec, clf)
        del clf
        ds = _read(ray, files, data_fmt, names)
        ds = ds.select_columns([c for c in [columns.id_column, *text_cols, "path"] if c])
        options: dict[str, Any] = {
            "fn_constructor_kwargs": {
                "spec": spec,
                "text_columns": text_cols,
                "review": review,
            },
            "batch_size": batch_size,
            "batch_format": "pandas",
            "compute": ray.data.ActorPoolStrategy(size=concurrency),  # a fixed actor pool
            "num_cpus": cpus_per_worker,
        }
        if gpus_per_worker > 0:
            options["num_gpus"] = gpus_per_worker
        predicted = ds.map_batches(_Predictor, **options)
        shutil.rmtree(staging, ignore_errors=True)
        try:
            predicted.write_parquet(str(staging))
        except TaxonomistError:
            raise
        except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors in its own types
            raise DataError(f"the Ray job failed: {_cause(exc)}", file=input_spec) from None
        import pyarrow.dataset as pads

        table = pads.dataset(str(staging), format="parquet").to_table(columns=["error"])
        bad = int(table.num_rows - table.column("error").null_count)
        written = int(table.num_rows - bad)
        if written == 0:
            raise DataError(f"no valid rows to classify ({bad} bad rows)", file=input_spec)
        parts = sorted(p.name for p in staging.glob("*.parquet"))
        manifest = {
            "job_format": 1,
            "engine": "ray",
            "input": {"files": [str(f.resolve()) for f in files]},
            "model": info,
            "settings": spec.settings(),
            "parts": [{"file": p} for p in parts],
            "rows": written,
            "bad_rows": bad,
            "complete": True,
            "finished_at": time.time(),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")
        if out_dir.exists():
            out_dir.rmdir()  # empty: checked above
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if started_ray:
            ray.shutdown()
    return BatchOutcome(
        out_dir, written, bad, len(parts), 0, time.perf_counter() - started, out_dir / MANIFEST
    )


def _cause(exc: BaseException) -> str:
    """The innermost message of a Ray error (a worker's exception arrives wrapped)."""
    text = str(exc).strip().splitlines()
    useful = [line for line in text if line.strip() and not line.startswith(" ")]
    return (useful[-1] if useful else type(exc).__name__)[:500]
