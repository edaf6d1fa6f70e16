"""Resumable local batch jobs: SIGKILL midway, resume, and the same rows as one clean run."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taxonomist.batch.job import JobSpec, classify_batch
from taxonomist.errors import ConfigError, DataError
from taxonomist.models import model_class

SRC = str(Path(__file__).parents[1] / "src")


def train_linear(directory: Path) -> Path:
    """A `linear` model trained on the tiny corpus, saved under `directory`."""
    from taxonomist.taxonomy_loaders import from_labels

    corpus = Path(__file__).parent / "corpora" / "fashion_tiny.csv"
    with open(corpus, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    taxonomy = from_labels(r["category"] for r in rows)
    cls = model_class("linear")
    model = cls(taxonomy)
    texts = [r["title"] for r in rows]
    model.fit(texts, [taxonomy.by_path(r["category"]).id for r in rows])
    return model.save(directory / "linear")


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory) -> Path:
    return train_linear(tmp_path_factory.mktemp("models"))


def perturbed_catalogue(
    path: Path, rows: int, seed: int = 0, bad_every: int = 997, prefix: str = "p"
) -> Path:
    """Real tiny-corpus titles with small perturbations; every `bad_every`-th row has no
    text (a bad row)."""
    corpus = Path(__file__).parent / "corpora" / "fashion_tiny.csv"
    with open(corpus, encoding="utf-8") as handle:
        titles = [r["title"] for r in csv.DictReader(handle)]
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title"])
        for i in range(rows):
            words = rng.choice(titles).split()
            rng.shuffle(words)
            title = " ".join(words) + f" {rng.randint(1, 99)}"
            writer.writerow([f"{prefix}{i}", "" if i % bad_every == 5 else title])
    return path


def read_parts(directory: Path) -> list[dict]:
    import pyarrow.parquet as pq

    manifest = json.loads((directory / "_manifest.json").read_text())
    rows: list[dict] = []
    for part in manifest["parts"]:
        rows += pq.read_table(directory / part["file"]).to_pylist()
    return rows


def test_sigkill_midway_then_resume_equals_one_clean_run(linear_model, tmp_path) -> None:
    data = perturbed_catalogue(tmp_path / "in.csv", 12_000)
    spec = JobSpec(model=str(linear_model))
    clean = classify_batch(data, tmp_path / "clean", spec, part_rows=200)
    assert clean.written == 12_000 - 13 and clean.bad_rows == 13

    out = tmp_path / "killed"
    cmd = [
        sys.executable, "-c", "from taxonomist.cli import main; main()", "classify", str(data),
        "--model", str(linear_model), "--out", str(out), "--format", "parquet",
        "--part-rows", "200",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    parts = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            parts = len(json.loads((out / "_manifest.json").read_text())["parts"])
        except (OSError, ValueError, KeyError):
            parts = 0
        if parts >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = json.loads((out / "_manifest.json").read_text())
    assert not manifest["complete"] and 3 <= len(manifest["parts"]) < 59, "killed midway"

    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "parts done before" in done.stdout
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"]
    assert read_parts(out) == read_parts(tmp_path / "clean")
    bad = (out / "_bad_rows.jsonl").read_text().splitlines()
    assert bad == (tmp_path / "clean" / "_bad_rows.jsonl").read_text().splitlines()
    assert len(bad) == 13 and json.loads(bad[0])["field"] == "title"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_resume_refuses_another_input_model_or_settings(linear_model, tmp_path) -> None:
    data = perturbed_catalogue(tmp_path / "in.csv", 1200)
    spec = JobSpec(model=str(linear_model))
    out = tmp_path / "job"
    classify_batch(data, out, spec, part_rows=500)
    with pytest.raises(ConfigError, match="pass --resume"):
        classify_batch(data, out, spec, part_rows=500)
    assert classify_batch(data, out, spec, part_rows=500, resume=True).resumed_parts == 3
    with pytest.raises(ConfigError, match="setting top_k"):
        classify_batch(
            data, out, JobSpec(model=str(linear_model), top_k=2), resume=True, part_rows=500
        )
    other = perturbed_catalogue(tmp_path / "other.csv", 1200, seed=1)
    other.replace(data)
    with pytest.raises(ConfigError, match="another input"):
        classify_batch(data, out, spec, part_rows=500, resume=True)
    manifest = json.loads((linear_model / "manifest.json").read_text())
    retrained = tmp_path / "retrained"
    import shutil

    shutil.copytree(linear_model, retrained)
    manifest["version"], manifest["digest"] = "another training run", "0" * 64
    (retrained / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="model"):
        classify_batch(data, tmp_path / "job", JobSpec(model=str(retrained)), resume=True)
    with pytest.raises(ConfigError, match="no job to resume"):
        classify_batch(data, tmp_path / "nothing", spec, resume=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("the user's")
    with pytest.raises(ConfigError, match="not empty"):
        classify_batch(data, tmp_path / "full", spec)
    assert (tmp_path / "full" / "mine.txt").read_text() == "the user's"
    empty = tmp_path / "empty.csv"
    empty.write_text("id,title\n1,\n")
    with pytest.raises(DataError, match="no valid rows"):
        classify_batch(empty, tmp_path / "e", spec)
    assert not json.loads((tmp_path / "e" / "_manifest.json").read_text())["complete"]


def test_repeated_ids_pass_through_without_a_table_of_ids(linear_model, tmp_path) -> None:
    # a job's memory must not grow with its input: no id table, so repeats are written
    # as they come (as the Ray engine writes them), not counted or refused
    data = tmp_path / "in.csv"
    data.write_text("id,title\na,Nike running shoes\na,Blue denim jeans\nb,Leather wallet\n")
    outcome = classify_batch(data, tmp_path / "out", JobSpec(model=str(linear_model)))
    assert outcome.written == 3 and outcome.bad_rows == 0
    assert [r["id"] for r in read_parts(tmp_path / "out")] == ["a", "a", "b"]
