"""The versioned model store: new versions never touch the current one; the pointer moves
atomically; a reader never sees a missing or half-written model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxonomist.classifier import load_classifier
from taxonomist.cli import app
from taxonomist.errors import ConfigError, ModelError
from taxonomist.persistence import read_manifest
from taxonomist.service import train_file
from taxonomist.store import ModelStore
from tests.conftest import CORPORA

runner = CliRunner()


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    store = tmp_path_factory.mktemp("store")
    first = train_file(CORPORA / "fashion_tiny.csv", store=store, name="fashion", preset="fast")
    second = train_file(
        CORPORA / "fashion_tiny.csv",
        store=store,
        name="fashion",
        preset="fast",
        overrides={"c": 0.1},
    )
    return store, first.model_dir.name, second.model_dir.name


def test_first_version_is_current_later_ones_wait(two_versions) -> None:
    store, first, second = two_versions
    models = ModelStore(store)
    assert first != second
    assert models.current_version("fashion") == first  # the second did not replace it
    manifest = read_manifest(models.path("fashion", second))
    assert manifest["store"]["parent"] == first
    assert len(manifest["store"]["data_digest"]) == 64
    assert manifest["store"]["training_data"]["train"].endswith("fashion_tiny.csv")
    assert "accuracy" in models.info("fashion", second).valid_metrics
    assert [v.version for v in models.versions("fashion")] == [first, second]


def test_promote_and_rollback_move_only_the_pointer(two_versions, tmp_path: Path) -> None:
    store, first, second = two_versions
    models = ModelStore(store)
    models.promote("fashion", second)
    try:
        assert models.current("fashion") == models.path("fashion", second)
        clf = load_classifier(store=store, name="fashion")
        assert clf.identity.name == "fashion" and clf.identity.version == second
        assert models.rollback("fashion") == first
        assert models.current_version("fashion") == first
    finally:
        if models.current_version("fashion") != first:
            models.promote("fashion", first)


def test_reader_never_sees_a_missing_or_partial_model(two_versions) -> None:
    store, first, second = two_versions
    models = ModelStore(store)
    problems: list[str] = []
    done = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                path = ModelStore(store).current("fashion")
                manifest = json.loads((path / "manifest.json").read_text())
                assert manifest["store"]["version"] in (first, second)
                assert (path / "taxonomy.json").is_file()
                reads += 1
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                problems.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(100):
            models.promote("fashion", second)
            models.rollback("fashion")
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not problems, problems[:3]
    assert reads > 0
    assert models.current_version("fashion") == first


def test_bad_names_and_versions_are_clear(two_versions, tmp_path: Path) -> None:
    store, _, _ = two_versions
    models = ModelStore(store)
    with pytest.raises(ConfigError, match="model name"):
        models.current("../etc")
    with pytest.raises(ModelError, match="no model named 'nope'"):
        models.current("nope")
    with pytest.raises(ModelError, match="no version 'v0'"):
        models.promote("fashion", "v0")
    with pytest.raises(ModelError, match="no earlier version"):
        ModelStore(tmp_path).rollback("fresh")


def test_models_cli(two_versions) -> None:
    store, first, second = two_versions
    listed = runner.invoke(app, ["models", "list", "--store", str(store)])
    assert listed.exit_code == 0, listed.output
    assert f"* fashion {first}" in listed.output and f"  fashion {second}" in listed.output
    shown = runner.invoke(app, ["models", "show", "fashion", "--store", str(store)])
    assert json.loads(shown.output)["version"] == first
    promoted = runner.invoke(app, ["models", "promote", "fashion", second, "--store", str(store)])
    assert promoted.exit_code == 0, promoted.output
    back = runner.invoke(app, ["models", "rollback", "fashion", "--store", str(store)])
    assert back.exit_code == 0 and first in back.output
    missing = runner.invoke(app, ["models", "promote", "fashion", "zzz", "--store", str(store)])
    assert missing.exit_code == 1 and "no version 'zzz'" in missing.output


def test_train_and_classify_through_the_store_cli(tmp_path: Path) -> None:
    store = tmp_path / "store"
    trained = runner.invoke(
        app,
        ["train", str(CORPORA / "fashion_tiny.csv"), "--store", str(store), "--name", "t"]
        + ["--preset", "fast"],
    )
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "p.csv"
    result = runner.invoke(
        app,
        ["classify", str(CORPORA / "fashion_tiny.csv"), "--store", str(store), "--name", "t"]
        + ["--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().count("\n") > 10
    wrong = runner.invoke(
        app,
        ["classify", str(CORPORA / "fashion_tiny.csv"), "--store", str(store), "--name", "t"]
        + ["--out", str(tmp_path / "q.csv"), "--taxonomy", "google"],
    )
    assert wrong.exit_code == 1 and "its own taxonomy" in wrong.output
    both = runner.invoke(app, ["train", str(CORPORA / "fashion_tiny.csv"), "--name", "t"])
    assert both.exit_code == 1 and "--store and --name" in both.output
