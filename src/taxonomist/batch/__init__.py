"""Batch jobs for large catalogues: a resumable local runner (`runner`) and a Ray Data
engine (`ray_engine`) for a cluster. Both write a folder of part files and a manifest."""

from __future__ import annotations

from .runner import BatchOutcome, read_job, run_local

__all__ = ["BatchOutcome", "read_job", "run_local"]
