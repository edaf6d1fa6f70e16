"""Progress of long steps, for someone watching a terminal or reading a log afterwards.

Library code reports `(stage, done, total)` either through a `progress` callback it was
given or, from deep inside (an encoder halfway through a training run), through
:func:`report`, which reaches whatever callback the caller installed with
:func:`reporting_to` (a context variable: nothing process-wide, nothing when none is set).

:class:`ProgressPrinter` is one such callback: a bar per stage on a terminal, and in a log
(stderr not a terminal: CI, cron, `nohup`) a line every `interval` seconds with done/total
and the time left, plus one line when each stage ends, instead of a line per epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

Callback = Callable[[str, int, int], None]

_current: ContextVar[Callback | None] = ContextVar("taxonomist_progress", default=None)


@contextmanager
def reporting_to(callback: Callback | None) -> Iterator[None]:
    """Send every :func:`report` made inside the block (in this thread or task) to `callback`."""
    token = _current.set(callback)
    try:
        yield
    finally:
        _current.reset(token)


def report(stage: str, done: int, total: int) -> None:
    """Tell the installed callback, if any, that `done` of `total` units of `stage` are done."""
    callback = _current.get()
    if callback is not None:
        callback(stage, done, total)


def active() -> bool:
    """Whether anyone listens: loops may then work in chunks to have something to report."""
    return _current.get() is not None


def estimate_rows(path: str | Path) -> int:
    """About how many records a data file holds (0 when unknown), cheaply: the Parquet
    footer, else the newlines (counted outright up to 64 MB, extrapolated from the first 4 MB
    beyond), less a header line for CSV/TSV. Quoted multi-line cells make it an estimate."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        with open(path, "rb") as handle:
            if size <= 64 << 20:
                lines = handle.read().count(b"\n")
            else:
                head = handle.read(4 << 20)
                lines = int(head.count(b"\n") * size / max(len(head), 1))
    except Exception:  # noqa: BLE001 - an estimate only; the reader reports real problems
        return 0
    header = 1 if path.suffix.lower() in (".csv", ".tsv", ".txt") else 0
    return max(lines - header, 0)


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _elapsed(state: _Stage, now: float) -> float:
    if state.first_done > 0 and state.done > state.first_done:
        # its first units finished before anyone heard of the stage: scale the measured pace
        # rather than count whatever ran before it (reading, encoding) as part of it
        return (now - state.first_at) * state.done / (state.done - state.first_done)
    return now - state.started


@dataclass
class _Stage:
    started: float
    last_line: float
    done: int = 0
    total: int = 0
    finished: bool = False
    bar: Any = None
    updated: float = 0.0
    first_at: float = 0.0
    first_done: int = 0


class ProgressPrinter:
    """A progress callback `(stage, done, total)` that prints to `stream` (stderr).

    In a log: a line at most every `interval` seconds per stage ("classifying: 2,048/10,000
    (20%), 31 s, about 2 min 04 s left"), one line when a stage ends, and one for a stage
    left unfinished (early stopping) when the next run of it starts or at :meth:`close`.
    A stage whose `done` falls back below its last value has started over (the next member
    of an ensemble). `total <= 0` means unknown: done and rate only.

    Args:
        stream: where lines go (default stderr).
        interval: seconds between lines of one stage.
        tty: bars instead of lines; default: whether `stream` is a terminal.
        prefix: put before every stage name ("training").
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval: float = 10.0,
        tty: bool | None = None,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = tty if tty is not None else bool(getattr(self.stream, "isatty", bool)())
        self.prefix = prefix
        self.clock = clock
        self._stages: dict[str, _Stage] = {}
        # a stage that reports only when done ("fit 1/1") began, at the latest, when the
        # previous report came in
        self._last_event = clock()

    def _name(self, stage: str) -> str:
        return f"{self.prefix}: {stage}" if self.prefix else stage

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        state = self._stages.get(stage)
        if state is None or done < state.done or (state.finished and done <= state.done):
            if state is not None:
                self._end(stage, state, now)
            # the stage began, at the latest, when the previous report came in; its pace is
            # measured from its own first report on
            began = now if done == 0 else self._last_event
            state = self._stages[stage] = _Stage(
                started=began, last_line=now, first_at=now, first_done=done
            )
        self._last_event = now
        state.done, state.total, state.updated = done, total, now
        if self.tty:
            self._bar(stage, state)
            if total > 0 and done >= total:
                self._end(stage, state, now)
            return
        if total > 0 and done >= total:
            self._end(stage, state, now)
        elif now - state.last_line >= self.interval:
            state.last_line = now
            self._line(self._progress_text(stage, state, now))

    def _progress_text(self, stage: str, state: _Stage, now: float) -> str:
        elapsed = _elapsed(state, now)
        if state.total > 0:
            share = state.done / state.total
            text = f"{self._name(stage)}: {state.done:,}/{state.total:,} ({share:.0%}), "
            text += _duration(elapsed)
            if state.done > state.first_done and now > state.first_at:
                pace = (now - state.first_at) / (state.done - state.first_done)
                text += f", about {_duration(pace * (state.total - state.done))} left"
            return text
        rate = state.done / elapsed if elapsed > 0 else 0.0
        return f"{self._name(stage)}: {state.done:,} done, {_duration(elapsed)} ({rate:,.0f}/s)"

    def _bar(self, stage: str, state: _Stage) -> None:
        from tqdm import tqdm

        if state.bar is None:
            state.bar = tqdm(
                total=state.total or None, desc=self._name(stage), file=self.stream, leave=False
            )
        state.bar.update(state.done - state.bar.n)

    def _end(self, stage: str, state: _Stage, now: float) -> None:
        if state.finished:
            return
        state.finished = True
        if state.bar is not None:
            state.bar.close()
            state.bar = None
        # a stage ended from outside (the next one, close) ended at its last report
        end = now if state.total > 0 and state.done >= state.total else state.updated
        took = _duration(_elapsed(state, end))
        if state.total > 0 and state.done >= state.total:
            self._line(f"{self._name(stage)}: {state.total:,}/{state.total:,} in {took}")
        elif state.total > 0:
            self._line(
                f"{self._name(stage)}: stopped at {state.done:,}/{state.total:,} after {took}"
            )
        else:
            self._line(f"{self._name(stage)}: {state.done:,} in {took}")

    def close(self) -> None:
        """End every stage still open (one final line each)."""
        now = self.clock()
        for stage, state in self._stages.items():
            self._end(stage, state, now)
