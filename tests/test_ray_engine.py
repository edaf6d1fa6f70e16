"""The Ray Data engine on a local Ray (loopback): the same predictions as the local engine."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path

import pytest
from test_batch import perturbed_catalogue, read_parts, train_linear

from taxonomist.batch.job import JobSpec, classify_batch
from taxonomist.errors import ConfigError, DataError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (the batch extra)"
)
CORPUS = Path(__file__).parent / "corpora" / "fashion_tiny.csv"


@pytest.fixture(scope="module")
def local_ray():
    # before the first import: listeners on loopback only, no usage reporting
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # a busy CI machine
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory) -> Path:
    return train_linear(tmp_path_factory.mktemp("models"))


def _by_id(rows: list[dict]) -> dict[str, tuple]:
    return {r["id"]: (r["category_id"], r["confidence"], r.get("category_2")) for r in rows}


def _ray_rows(directory: Path) -> list[dict]:
    import pyarrow.dataset as pads

    return pads.dataset(str(directory), format="parquet").to_table().to_pylist()


def _folder_and_whole(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    perturbed_catalogue(folder / "a.csv", 700, seed=1, bad_every=101)
    perturbed_catalogue(folder / "b.csv", 500, seed=2, prefix="q")
    whole = tmp_path / "whole.csv"
    lines = (folder / "a.csv").read_text().splitlines()
    lines += (folder / "b.csv").read_text().splitlines()[1:]
    whole.write_text("\n".join(lines) + "\n")
    return folder, whole


def test_local_and_ray_engines_agree(local_ray, linear_model, tmp_path) -> None:
    folder, whole = _folder_and_whole(tmp_path)
    # a threshold: the review columns (needs_review, suggested_*) are written by both
    spec = JobSpec(model=str(linear_model), top_k=2, min_confidence=0.6)
    local = classify_batch(whole, tmp_path / "local", spec, part_rows=300)
    remote = classify_batch(
        folder,
        tmp_path / "ray",
        spec,
        engine="ray",
        concurrency=2,
        batch_size=128,
        cpus_per_worker=0.5,  # two actors and the read/write tasks on the 2-CPU test cluster
    )
    assert remote.written == local.written and remote.bad_rows == local.bad_rows == 8
    rows = _ray_rows(tmp_path / "ray")
    good = [r for r in rows if r["error"] is None]
    local_rows = read_parts(tmp_path / "local")
    assert _by_id(good) == _by_id(local_rows)
    # the same columns in the same order, and every value alike (not only the best path)
    assert list(rows[0]) == [*local_rows[0], "error"]
    assert {r["id"]: {k: v for k, v in r.items() if k != "error"} for r in good} == {
        r["id"]: r for r in local_rows
    }
    assert any(r["needs_review"] for r in good) and any(r["suggested_category"] for r in good)
    errors = [r["error"] for r in rows if r["error"] is not None]
    assert all(
        "field 'title': empty text" in e and e.split(":")[0].endswith(".csv") for e in errors
    )
    assert sum("a.csv" in e for e in errors) == 7
    manifest = json.loads((tmp_path / "ray" / "_manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == local.written


def test_zero_shot_adapts_once_and_ships_the_state(local_ray, tmp_path, monkeypatch) -> None:
    from taxonomist.zeroshot import ZeroShotClassifier

    with open(CORPUS, encoding="utf-8") as handle:
        paths = sorted({r["category"] for r in csv.DictReader(handle)})
    taxonomy = tmp_path / "paths.txt"
    taxonomy.write_text("\n".join(paths) + "\n")
    folder, whole = _folder_and_whole(tmp_path)
    spec = JobSpec(taxonomy=str(taxonomy), encoder="fake")
    classify_batch(whole, tmp_path / "local", spec)
    calls = []
    original = ZeroShotClassifier.adapt
    monkeypatch.setattr(
        ZeroShotClassifier, "adapt", lambda self, texts: calls.append(1) or original(self, texts)
    )
    classify_batch(folder, tmp_path / "ray", spec, engine="ray", batch_size=100, concurrency=1)
    assert calls == [1]  # on the driver; the actors (other processes) only load the state
    ray_rows = _by_id([r for r in _ray_rows(tmp_path / "ray") if r["error"] is None])
    local_rows = _by_id(read_parts(tmp_path / "local"))
    assert ray_rows.keys() == local_rows.keys()
    for key, (category, confidence, _) in local_rows.items():
        # the same categories; confidences agree to float noise (BLAS sums a batch of 100
        # and one of 1,200 in different orders), i.e. to the written sixth decimal +- 1
        assert ray_rows[key][0] == category
        assert abs(ray_rows[key][1] - confidence) <= 2e-6


def test_ray_bad_input_and_unreachable_cluster(local_ray, linear_model, tmp_path) -> None:
    spec = JobSpec(model=str(linear_model))
    folder = tmp_path / "in"
    folder.mkdir()
    perturbed_catalogue(folder / "a.csv", 50)
    (folder / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="mixes formats"):
        classify_batch(folder, tmp_path / "o1", spec, engine="ray")
    (folder / "a.csv").unlink()
    with pytest.raises(DataError, match=r"b\.parquet: unreadable Parquet"):
        classify_batch(folder, tmp_path / "o2", spec, engine="ray")
    assert not (tmp_path / "o2").exists()
    assert not list(tmp_path.glob(".o2*"))  # no staging folder left behind
    perturbed_catalogue(tmp_path / "c.csv", 20)
    with pytest.raises(ConfigError, match="no Ray cluster answers"):
        classify_batch(
            tmp_path / "c.csv", tmp_path / "o3", spec, engine="ray", ray_address="ray://127.0.0.1:9"
        )
    assert not (tmp_path / "o3").exists()
