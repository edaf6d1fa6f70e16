"""The report is readable (issue 11, item 17): axis labels, axes, columns, legends, the
share of predictions on the gold category's branch, and why examples lack titles."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from taxonomist.data import ColumnSpec
from taxonomist.evaluation import evaluate
from taxonomist.report import (
    Example,
    coverage_axes,
    misclassified_examples,
    render_html,
    tick_labels,
)


def test_tick_labels_read_from_the_start_and_tell_leaves_apart() -> None:
    labels = [
        "Home & Garden > Kitchen & Dining > Kitchen Appliances > Refrigerators",
        "Apparel & Accessories > Clothing > Socks",
        "Animals & Pet Supplies > Pet Supplies > Pet Apparel > Socks",
        "Electronics > Cameras > Digital Cameras",
    ]
    ticks = [t.replace("\n", " ") for t in tick_labels(labels)]
    assert ticks[0] == "Refrigerators" and ticks[3] == "Digital Cameras"
    assert ticks[1] == "Clothing > Socks" and ticks[2] == "Pet Apparel > Socks"
    long = tick_labels(["A > " + "Extremely Long Category Name With Many Words " * 3])[0]
    assert long.startswith("Extremely Long") and long.count("\n") <= 2


def test_coverage_axes_fit_the_data() -> None:
    rows = [{"coverage": c, "accuracy": a} for c, a in ((1.0, 0.91), (0.8, 0.95), (0.4, 0.99))]
    (x0, x1), (y0, y1) = coverage_axes(rows, target=0.95)
    assert 0.3 < x0 < 0.4 and 1.0 < x1 <= 1.05
    assert 0.85 < y0 < 0.91 and 0.99 < y1 <= 1.01


def _result():
    gold = [("Socks",), ("Socks", "Crew Socks"), ("Bags",), ("Bags", "Handbags"), ("Hats",)]
    pred = [("Socks", "Crew Socks"), ("Socks",), ("Luggage",), ("Bags", "Handbags"), ()]
    return evaluate(gold, pred, [0.9, 0.8, 0.7, 0.6, 0.1])


def test_headline_shows_share_on_the_gold_branch() -> None:
    result = _result()
    assert result.metrics["same_branch"] == pytest.approx(3 / 5)
    assert result.metrics["descendant_of_gold"] == pytest.approx(1 / 5)
    assert result.metrics["ancestor_of_gold"] == pytest.approx(1 / 5)
    assert "ancestor or a descendant" in result.summary()
    page = render_html(result)
    assert "Gold category, or an ancestor or descendant of it" in page


def test_no_photo_column_without_photos() -> None:
    examples = [Example("p1", "Blue bag", None, "Bags", "Luggage", 0.7)]
    page = render_html(_result(), examples=examples)
    assert "<th>Photo</th>" not in page and 'class="photo"' not in page
    assert "<th>Product</th>" in page


def test_examples_without_titles_are_explained(tmp_path: Path, caplog) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("id,category\np1,Bags\n", encoding="utf-8")
    mistakes = [Example("p1", "", None, "Bags", "Luggage", 0.7)]
    with caplog.at_level(logging.INFO, logger="taxonomist"):
        shown = misclassified_examples(gold, ColumnSpec(text_columns=("title",)), mistakes)
    assert shown and shown[0].title == ""
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned and "without titles or photos" in warned[0].getMessage()


def test_training_curve_legend_sits_below_the_plot(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.figure import Figure

    from taxonomist.training import plot_training_curve

    history = [
        {"epoch": e, "train_loss": 2 / e, "valid_loss": 2.2 / e, "valid_accuracy": 0.5 + e / 40}
        for e in range(1, 11)
    ]
    model = SimpleNamespace(kind="head", report=SimpleNamespace(history=history))
    seen = {}
    real_savefig = Figure.savefig

    def savefig(fig, *args, **kwargs):
        fig.canvas.draw()
        seen["legend"] = [lg.get_window_extent() for lg in fig.legends]
        seen["axes"] = [lg.get_legend() for lg in fig.axes]
        seen["plot"] = fig.axes[0].get_window_extent()
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    assert plot_training_curve(model, tmp_path / "curve.png") is not None
    assert len(seen["legend"]) == 1 and seen["axes"] == [None, None]  # one legend, outside
    legend, plot = seen["legend"][0], seen["plot"]
    assert legend.y1 <= plot.y0  # wholly below the axes: it covers no curve
