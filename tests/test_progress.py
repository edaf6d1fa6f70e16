"""Progress in a log (not a terminal): a line every ~10 s per stage and one as it ends."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from taxonomist.cli import app
from taxonomist.encoders import FakeEncoder, Role
from taxonomist.progress import ProgressPrinter, estimate_rows, report, reporting_to


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_interval_with_eta_and_one_per_stage() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, interval=10, tty=False, clock=clock)
    for done in range(0, 101):
        clock.now = done * 0.5  # 50 s for 100 units
        printer("encoding", done, 100)
    lines = out.getvalue().splitlines()
    # ~one line each 10 s (at 10, 20, 30, 40 s), then the end
    assert len(lines) == 5, lines
    assert lines[0].startswith("encoding: 20/100 (20%), 10 s, about 40 s left")
    assert lines[-1] == "encoding: 100/100 in 50 s"


def test_repeated_stage_runs_each_end_in_one_line_even_when_stopped_early() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, interval=10, tty=False, clock=clock, prefix="training")
    for member in range(3):
        last = 30 if member != 1 else 12  # the second member stops early
        for epoch in range(1, last + 1):
            clock.now += 0.1
            printer("epoch", epoch, 30)
    printer("fit", 1, 1)
    printer.close()
    lines = [re.sub(r"[0-9.]+ s$", "T s", ln) for ln in out.getvalue().splitlines()]
    assert lines == [
        "training: epoch: 30/30 in T s",
        "training: epoch: stopped at 12/30 after T s",
        "training: epoch: 30/30 in T s",
        "training: fit: 1/1 in T s",
    ], lines


def test_unknown_total_reports_count_and_rate() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, interval=10, tty=False, clock=clock)
    printer("classifying", 0, 0)
    clock.now = 12
    printer("classifying", 600, 0)
    printer.close()
    assert out.getvalue().splitlines() == [
        "classifying: 600 done, 12 s (50/s)",
        "classifying: 600 in 12 s",
    ]


def test_encoders_report_through_the_context_only_when_listened_to() -> None:
    seen: list[tuple[str, int, int]] = []
    texts = [f"product {i}" for i in range(5000)]
    encoder = FakeEncoder()
    plain = encoder.encode(texts)
    with reporting_to(lambda *a: seen.append(a)):
        chunked = encoder.encode(texts)
        encoder.encode(texts[:10])  # short: nothing to report
        encoder.encode(texts, role=Role.CATEGORY)  # categories: the zero-shot engine's own
        report("custom", 1, 2)
    np.testing.assert_allclose(plain, chunked)
    assert [s[1:] for s in seen[:-1]] == [(2048, 5000), (4096, 5000), (5000, 5000)]
    assert seen[0][0].startswith("encoding products") and seen[-1] == ("custom", 1, 2)
    report("nobody listens", 1, 1)  # no error


def test_estimate_rows(tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text("id,title\n" + "".join(f"{i},t\n" for i in range(250)), encoding="utf-8")
    assert estimate_rows(csv) == 250
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"id": 1}\n{"id": 2}\n', encoding="utf-8")
    assert estimate_rows(jsonl) == 2
    assert estimate_rows(tmp_path / "missing.csv") == 0


def test_train_prints_one_line_per_stage_not_per_epoch(tmp_path: Path, tiny_corpus: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(tiny_corpus),
            "--out",
            str(tmp_path / "m"),
            "--kind",
            "head",
            "--encoder",
            "fake",
            "--epochs",
            "12",
        ],
    )
    assert result.exit_code == 0, result.output
    epoch_lines = [ln for ln in result.output.splitlines() if "epoch" in ln]
    assert not any(ln.strip().startswith("epoch ") for ln in epoch_lines)  # no bare lines
    # validation run and refit: one line each (early stopping may end the first one sooner)
    assert 1 <= len(epoch_lines) <= 2, result.output
    assert all(ln.startswith("training: epoch: ") for ln in epoch_lines)
    assert "torchvision" not in result.output


def test_classify_in_a_log_ends_with_one_progress_line(
    tmp_path: Path, tiny_corpus: Path, tiny_taxonomy
) -> None:
    tax = tmp_path / "tax.json"
    tax.write_text(tiny_taxonomy.to_json(), encoding="utf-8")
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(
        app,
        ["classify", str(tiny_corpus), "--out", str(out), "-t", str(tax), "--encoder", "fake"],
    )
    assert result.exit_code == 0, result.output
    progress = [ln for ln in result.output.splitlines() if ln.startswith("classifying:")]
    assert len(progress) == 1 and progress[0].startswith("classifying: 160/160 in ")


def test_tune_reports_each_trials_stages(tmp_path: Path, tiny_corpus: Path) -> None:
    args = ["tune", str(tiny_corpus), "--out", str(tmp_path / "m"), "--preset", "fast"]
    result = CliRunner().invoke(app, [*args, "--time-budget", "0.1"])
    assert result.exit_code == 0, result.output
    assert "tuning: fit: 1/1 in " in result.output
    assert "min used)" in result.output  # each trial line says how much budget is spent
