"""Encoding long lists with a progress line every few seconds, in a terminal or not.

Embedding a 10k-category taxonomy takes minutes on a small CPU; a log line with done/total
and an ETA every ~10 s tells a user (or a CI log) that the job is alive and how long it has
left. The lines go to the `taxonomist.progress` logger, which the CLI shows by default.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from .base import Encoder, Role

progress_logger = logging.getLogger("taxonomist.progress")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def encode_with_progress(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    role: Role = Role.PRODUCT,
    what: str = "texts",
    batch_size: int = 128,
    chunk: int = 512,
    every: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> np.ndarray:
    """`encoder.encode(texts)` in chunks, logging "what: done/total (pct), ETA" at most every
    `every` seconds (the first line after `every` seconds, so quick runs stay quiet).

    Example:
        >>> encode_with_progress(FakeEncoder(), ["a", "b"], what="categories").shape
        (2, 256)
    """
    texts = list(texts)
    if len(texts) <= chunk:
        return encoder.encode(texts, role=role, batch_size=batch_size)
    started = last = clock()
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(encoder.encode(texts[start : start + chunk], role=role, batch_size=batch_size))
        done = min(start + chunk, len(texts))
        now = clock()
        if now - last >= every and done < len(texts):
            rate = done / max(now - started, 1e-9)
            progress_logger.info(
                "%s: %d/%d (%d%%), ETA %s",
                what,
                done,
                len(texts),
                100 * done // len(texts),
                _duration((len(texts) - done) / rate),
            )
            last = now
    if clock() - started >= every:
        progress_logger.info(
            "%s: %d/%d done in %s", what, len(texts), len(texts), _duration(clock() - started)
        )
    return np.vstack(parts)
