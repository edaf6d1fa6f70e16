"""`taxonomist audit`: out-of-fold confident learning, tree-aware, duplicate conflicts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxonomist.cli import app

pytest.importorskip("cleanlab")


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_audit_finds_flipped_labels_and_conflicting_duplicates(tiny_rows, tmp_path) -> None:
    rows = [dict(r) for r in tiny_rows]
    # a watch filed under socks (another department) and a sandal filed as heels (a sibling)
    watch = next(i for i, r in enumerate(rows) if "Watch" in r["title"])
    rows[watch]["category"] = "Accessories > Socks > Socks"
    copy = dict(rows[0], id="copy-1", category="Apparel > Topwear > Kurtas")
    data = _write(tmp_path / "labelled.csv", [*rows, copy])
    out, page = tmp_path / "issues.csv", tmp_path / "audit.html"
    # `fast` keeps the test quick; the default (`balanced`) scores with the same code
    result = _run("audit", data, "--out", out, "--report", page, "--folds", "3", "--preset", "fast")
    assert result.exit_code == 0, result.output
    issues = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    by_id = {r["id"]: r for r in issues}
    flipped = by_id[rows[watch]["id"]]
    assert flipped["suggested"].startswith("Accessories > Watches") and flipped["level"] == "2"
    assert "duplicate_conflict" in by_id["copy-1"]["reason"]
    assert [int(r["rank"]) for r in issues] == list(range(1, len(issues) + 1))
    assert float(issues[0]["score"]) >= float(issues[-1]["score"])
    assert int(flipped["line"]) == watch + 2  # the file's line (header is line 1)
    text = page.read_text(encoding="utf-8")
    assert "Label audit" in text and rows[watch]["title"] in text


def test_audit_bad_input_names_file_and_row(tiny_rows, tmp_path) -> None:
    one = _write(tmp_path / "one.csv", [dict(r, category="A > B") for r in tiny_rows[:10]])
    result = _run("audit", one, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "one.csv" in result.output
    assert "same label" in result.output and "line 2" in result.output

    few = _write(tmp_path / "few.csv", tiny_rows[:3])
    result = _run("audit", few, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "fewer than the 5 folds" in result.output
    assert "few.csv" in result.output

    holes = [dict(r) for r in tiny_rows[:30]]
    holes[6]["category"] = ""
    hole = _write(tmp_path / "hole.csv", holes)
    result = _run("audit", hole, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "hole.csv: line 8" in result.output
    assert "needs a category" in result.output

    result = _run("audit", hole, "--out", hole.with_suffix(".xlsx"))
    assert result.exit_code == 1 and ".csv" in result.output
    same = _write(tmp_path / "same.csv", tiny_rows)
    result = _run("audit", same, "--out", same)
    assert result.exit_code == 1 and "refusing to overwrite" in result.output
    assert same.read_text(encoding="utf-8").startswith("id,title,category")
