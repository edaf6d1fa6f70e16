"""Figures without pyplot: no backend switch, no global figure registry.

`matplotlib.use()` and pyplot's figure manager are process-wide state; a server that draws
a report in one thread must not change how another thread (or the host application) draws.
A bare `Figure` renders to PNG through its own Agg canvas.
"""

from __future__ import annotations

from typing import Any


class Figures:
    """The two pyplot calls the reports use, on private `Figure` objects."""

    @staticmethod
    def subplots(*, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(**kwargs)

    @staticmethod
    def close(fig: Any) -> None:
        fig.clear()  # a private Figure has no manager to close; free its artists now
