"""`taxonomist suggest-labels`: uncertain, diverse, no near-copies of labelled products."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taxonomist.analysis.active import k_centre, suggest
from taxonomist.analysis.neighbours import TrainingIndex
from taxonomist.cli import app
from taxonomist.models import load_model
from taxonomist.taxonomy_loaders import from_labels
from taxonomist.training import train_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with open(Path(__file__).parent / "corpora" / "fashion_tiny.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    tax = from_labels(r["category"] for r in rows)
    out = tmp_path_factory.mktemp("active") / "model"
    labelled = rows[::2]
    train_model(
        [r["title"] for r in labelled], [tax.by_path(r["category"]).id for r in labelled],
        tax, out, preset="fast", ids=[r["id"] for r in labelled], valid_fraction=0.3,
    )  # fmt: skip
    return out, rows


def test_picks_are_uncertain_diverse_and_skip_labelled_copies(setup) -> None:
    model_dir, rows = setup
    model = load_model(model_dir)
    index = TrainingIndex.load(model_dir)
    pool = [r["title"] for r in rows]  # half of it is the training data itself
    ids = [r["id"] for r in rows]
    picks = suggest(model, pool, ids, 20, labelled=index)
    labelled_ids = {r["id"] for r in rows[::2]}
    assert len(picks) == 20 and not {p.id for p in picks} & labelled_ids
    margin_only = suggest(model, pool, ids, 20, labelled=index, diversity=False)
    assert [p.uncertainty for p in margin_only] == sorted(
        (p.uncertainty for p in margin_only), reverse=True
    )
    assert all(1 <= p.level <= 3 and 0 <= p.margin <= 1 for p in picks)
    # duplicates in the pool count once
    twice = suggest(model, pool + pool[1:2], ids + ["dup"], 200, labelled=None)
    assert "dup" not in {p.id for p in twice}


def test_k_centre_spreads_out() -> None:
    x = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # the second pick is the far point even though the near copy is more uncertain
    assert k_centre(x, np.array([1.0, 0.9, 0.5]), 2) == [0, 2]


def test_cli_writes_suggestions_and_rejects_bad_labelled_files(setup, tmp_path) -> None:
    model_dir, rows = setup
    pool = tmp_path / "pool.csv"
    with open(pool, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title"])
        writer.writeheader()
        writer.writerows({"id": r["id"], "title": r["title"]} for r in rows[1::2])
    out = tmp_path / "next.csv"
    run = CliRunner().invoke
    result = run(app, ["suggest-labels", str(pool), "--model", str(model_dir), "--out",
                       str(out), "-n", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    picked = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert len(picked) == 10 and picked[0]["rank"] == "1" and picked[0]["predicted"]
    bad = tmp_path / "labelled.csv"
    with open(bad, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "category"])
        writer.writeheader()
        writer.writerow({"id": "1", "title": "Red shirt", "category": "Apparel > Topwear"})
        writer.writerow({"id": "2", "title": "Blue shirt", "category": ""})
    result = run(app, ["suggest-labels", str(pool), "--model", str(model_dir), "--out",
                       str(out), "--labelled", str(bad)])  # fmt: skip
    assert result.exit_code == 1 and "labelled.csv: line 3" in result.output
    result = run(app, ["suggest-labels", str(pool), "--model", str(model_dir), "--out",
                       str(pool)])  # fmt: skip
    assert result.exit_code == 1 and "refusing to overwrite" in result.output
