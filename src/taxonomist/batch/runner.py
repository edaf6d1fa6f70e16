"""A resumable local batch job: input in, a folder of part files and a manifest out.

Why parts: a catalogue of millions of rows takes hours; a crash (or SIGKILL, or a spot
instance going away) must cost one part, not the job. The input is cut into parts of
`part_rows` good rows, in reading order, which is deterministic for a given file and column
spec. Each part is written to a temporary name and renamed into place (`PredictionWriter`),
and only then is it recorded in the manifest (itself replaced atomically). A part on disk but
not in the manifest is therefore redone and replaced, never counted twice; a part in the
manifest is complete. `--resume` re-reads the input, skips the parts the manifest lists
(checking that their input ranges still match) and carries on.

Memory stays flat: one part of rows at a time; bad rows go to a side file as they are found
(`_bad_rows.jsonl`) and memory keeps only their count; ids are copied through, not checked
for repeats (`classify` to a single file checks them).

The embedding cache is off for batch jobs by default: a re-filing job sees each title once,
so caching 1.5 KB per product (1.5 GB a million) buys nothing and costs disk and SQLite
writes; `cache=True` turns it on (a catalogue classified again and again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..data import ColumnSpec, ReadReport, read_products
from ..data.readers import BadRow, Product, detect_format
from ..data.writers import WRITE_FORMATS, PredictionWriter
from ..errors import ConfigError, DataError
from ..persistence import atomic_write_text
from ..predictions import Predictions

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
BAD_ROWS = "_bad_rows.jsonl"
JOB_FORMAT = 1
FORMATS = ("parquet", "jsonl", "csv")

Predict = Callable[[list[Product]], Predictions]


@dataclass
class BatchOutcome:
    output: Path
    written: int
    bad_rows: int
    parts: int
    resumed_parts: int
    seconds: float
    manifest: Path


class _Counted(list):
    """Stands in for `ReadReport.bad_rows` in a batch job: counts, keeps nothing (the rows
    themselves went to the side file)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def append(self, item: Any) -> None:
        self.seen += 1

    def __len__(self) -> int:
        return self.seen


def input_fingerprint(path: Path) -> dict[str, Any]:
    """Size and a digest of the first and last MiB: cheap on a 10 GB file, and a changed,
    appended-to or truncated input shows."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(size - (1 << 20))
            digest.update(handle.read())
    return {"path": str(path.resolve()), "size": size, "sha256_ends": digest.hexdigest()}


@dataclass
class _Manifest:
    job_format: int
    input: dict[str, Any]
    model: dict[str, Any]
    settings: dict[str, Any]
    parts: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: int = 0
    bad_rows_bytes: int = 0  # the side file's length when the last part was recorded
    complete: bool = False
    started_at: float = 0.0
    finished_at: float | None = None

    def save(self, directory: Path) -> None:
        atomic_write_text(directory / MANIFEST, json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, directory: Path) -> _Manifest:
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text("utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"unreadable job manifest ({exc})", file=path) from None


def _differences(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{label} {key}: {old.get(key)!r} then, {new.get(key)!r} now"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def prepare_output(
    out_dir: Path,
    fmt: str,
    *,
    resume: bool,
    input_info: dict[str, Any],
    model_info: dict[str, Any],
    settings: dict[str, Any],
) -> _Manifest:
    """Check the output folder and return the job's manifest (new, or the one to resume).

    Raises:
        ConfigError: an unknown format; a folder that holds files but no job manifest; a job
            there without --resume; --resume against another input, model or settings.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown batch format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file; a batch job writes into a folder")
    has_manifest = (out_dir / MANIFEST).exists()
    if resume:
        if not has_manifest:
            raise ConfigError(f"--resume: {out_dir} holds no job to resume (no {MANIFEST})")
        manifest = _Manifest.read(out_dir)
        problems = (
            _differences("input", manifest.input, input_info)
            + _differences("model", manifest.model, model_info)
            + _differences("setting", manifest.settings, settings)
        )
        if manifest.job_format != JOB_FORMAT:
            problems.append(f"job format {manifest.job_format}, this version writes {JOB_FORMAT}")
        if problems:
            raise ConfigError(
                f"--resume: the job in {out_dir} was started with another input, model or "
                f"settings; {'; '.join(problems[:4])}. Start a new job in a new folder"
            )
        return manifest
    if has_manifest:
        raise ConfigError(
            f"{out_dir} already holds a batch job; pass --resume to continue it, or choose a "
            "new folder"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} is not empty; a batch job writes into a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(JOB_FORMAT, input_info, model_info, settings, started_at=time.time())
    manifest.save(out_dir)
    return manifest


def _part_name(index: int, fmt: str) -> str:
    return f"part-{index:06d}.{fmt}"


def _sweep_partial(out_dir: Path, manifest: _Manifest) -> None:
    """Remove what a killed run left half-done: temporary part files, parts the manifest
    does not list, and bad rows reported after the last recorded part."""
    listed = {p["file"] for p in manifest.parts}
    for path in out_dir.iterdir():
        name = path.name
        if name.startswith(".part-") or (name.startswith("part-") and name not in listed):
            path.unlink(missing_ok=True)
    side = out_dir / BAD_ROWS
    if side.exists() and side.stat().st_size > manifest.bad_rows_bytes:
        with open(side, "r+b") as handle:
            handle.truncate(manifest.bad_rows_bytes)


def run_local(
    input_path: str | Path,
    out_dir: str | Path,
    predict: Predict,
    *,
    model_info: dict[str, Any],
    columns: ColumnSpec = ColumnSpec(),
    fmt: str = "parquet",
    top_k: int = 1,
    part_rows: int = 10_000,
    resume: bool = False,
    strict: bool = False,
    settings: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    review: bool = False,
) -> BatchOutcome:
    """Classify `input_path` into part files under `out_dir` with `predict`, resumably.

    `model_info` identifies the model (a resume must use the same one); `settings` are the
    other choices that change predictions (top-k, thresholds, columns...).

    Raises:
        ConfigError: see `prepare_output`.
        DataError: unreadable input, no valid row, or input that no longer matches the
            ranges a resumed job recorded.
    """
    started = time.perf_counter()
    input_path, out = Path(input_path), Path(out_dir)
    if not input_path.is_file():
        raise DataError(
            "file not found" if not input_path.exists() else "not a file", file=input_path
        )
    detect_format(input_path)
    if f".{fmt}" not in WRITE_FORMATS:
        raise ConfigError(f"unknown batch format '{fmt}'; choose one of {', '.join(FORMATS)}")
    job_settings = {
        **(settings or {}),
        "top_k": top_k,
        "part_rows": part_rows,
        "format": fmt,
        "columns": asdict(columns),
    }
    manifest = prepare_output(
        out,
        fmt,
        resume=resume,
        input_info=input_fingerprint(input_path),
        model_info=model_info,
        settings=json.loads(json.dumps(job_settings)),  # as JSON gives it back
    )
    if manifest.complete:
        logger.info("job in %s is already complete", out)
    _sweep_partial(out, manifest)
    done = {p["index"]: p for p in manifest.parts}
    resumed = len(done)
    # the bad rows up to the last recorded part are in the side file already
    reported_up_to = max((p["last_line"] for p in manifest.parts), default=0)

    def report_bad(row: BadRow) -> None:
        if row.line <= reported_up_to:
            return
        side.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
        manifest.bad_rows += 1
        if on_bad_row:
            on_bad_row(row)

    report = ReadReport(str(input_path))
    report.bad_rows = _Counted()
    report.image_problems = _Counted()
    with open(out / BAD_ROWS, "a", encoding="utf-8") as side:
        for index, batch in enumerate(
            _batches(input_path, columns, strict, part_rows, report, report_bad)
        ):
            first, last = batch[0].line, batch[-1].line
            if index in done:
                if (done[index]["first_line"], done[index]["last_line"]) != (first, last):
                    raise DataError(
                        f"part {index} covered lines {done[index]['first_line']}-"
                        f"{done[index]['last_line']} but the input now gives {first}-{last}; "
                        "the input changed since the job started",
                        file=input_path,
                    )
                continue
            name = _part_name(index, fmt)
            with PredictionWriter(out / name, top_k, review=review) as writer:
                writer.write(predict(batch))
            side.flush()
            os.fsync(side.fileno())
            manifest.parts.append(
                {
                    "index": index,
                    "file": name,
                    "first_line": first,
                    "last_line": last,
                    "rows": len(batch),
                }
            )
            manifest.bad_rows_bytes = side.tell()
            manifest.save(out)
            if progress:
                progress(len(batch))
    written = sum(p["rows"] for p in manifest.parts)
    if written == 0:
        raise DataError(
            f"no valid rows to classify ({manifest.bad_rows} bad rows)", file=input_path
        )
    manifest.complete = True
    manifest.finished_at = time.time()
    manifest.save(out)
    return BatchOutcome(
        out,
        written,
        manifest.bad_rows,
        len(manifest.parts),
        resumed,
        time.perf_counter() - started,
        out / MANIFEST,
    )


def _batches(
    path: Path,
    columns: ColumnSpec,
    strict: bool,
    part_rows: int,
    report: ReadReport,
    on_bad_row: Callable[[BadRow], None],
) -> Iterator[list[Product]]:
    yield from read_products(
        path,
        columns,
        strict=strict,
        batch_size=part_rows,
        report=report,
        on_bad_row=on_bad_row,
        # repeated ids are not looked for: that needs memory per row (about 100 MB per
        # million), and a job's memory must not grow with its input; the Ray engine, which
        # reads rows in parallel, does not look either, so both write the same rows
        check_ids=False,
    )


def read_job(out_dir: str | Path) -> _Manifest:
    """The manifest of the job in `out_dir` (e.g. to check `complete` before reading parts)."""
    return _Manifest.read(Path(out_dir))
