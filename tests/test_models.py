"""Every model kind on the tiny corpus: fit, predict, save/load round trip, path consistency."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxonomist.errors import ConfigError, DataError, ModelError, NotTrainedError
from taxonomist.models import load_model, model_class
from taxonomist.models.knn import KnnConfig
from taxonomist.taxonomy import Taxonomy

KIND_CONFIGS = {
    "linear": {},
    "knn": {},
    "head": {"encoder": "fake", "epochs": 20, "hidden": 64, "batch_size": 32},
    "ensemble": {
        "members": (("linear", {}), ("head", {"encoder": "fake", "epochs": 5, "batch_size": 32}))
    },
}


def _data(rows, taxonomy: Taxonomy):
    texts = [r["title"] for r in rows]
    labels = [taxonomy.by_path(r["category"]).id for r in rows]
    return texts[:130], labels[:130], texts[130:], labels[130:]


def _fit(kind: str, rows, taxonomy: Taxonomy):
    cls = model_class(kind)
    model = cls(taxonomy, cls.config_class.from_dict(KIND_CONFIGS[kind]))
    texts, labels, vtexts, vlabels = _data(rows, taxonomy)
    report = model.fit(texts, labels, vtexts, vlabels)
    return model, report, vtexts, vlabels


@pytest.mark.parametrize("kind", sorted(KIND_CONFIGS))
def test_fit_predict_round_trip(kind, tiny_rows, tiny_taxonomy, tmp_path) -> None:
    model, report, vtexts, vlabels = _fit(kind, tiny_rows, tiny_taxonomy)
    assert report.valid_metrics["accuracy"] > 0.4
    assert 0.05 <= report.temperature <= 20
    preds = model.predict(vtexts, top_k=3)
    for pred in preds:
        for cand in pred.candidates:
            cat = tiny_taxonomy.get(cand.category_id)
            assert cat.path == cand.path  # every prediction is a path of the taxonomy
            levels = cand.level_confidences
            assert all(a >= b - 1e-9 for a, b in zip(levels, levels[1:]))
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["kind"] == kind and manifest["label_count"] == len(model.labels)
    assert manifest["format_version"] == 1 and manifest["environment"]["numpy"]
    assert not list(tmp_path.glob("m/**/*.pkl"))
    loaded = load_model(tmp_path / "m")
    assert list(loaded.predict(vtexts, top_k=3)) == list(preds)
    np.testing.assert_array_equal(loaded.predict_proba(vtexts), model.predict_proba(vtexts))


def test_labels_may_stop_at_internal_nodes(tiny_rows, tiny_taxonomy) -> None:
    texts, labels, _, _ = _data(tiny_rows, tiny_taxonomy)
    # file half the shirts only at "Apparel > Topwear"
    topwear = tiny_taxonomy.by_path("Apparel > Topwear").id
    labels = [topwear if "Topwear" in lab and i % 2 else lab for i, lab in enumerate(labels)]
    model = model_class("linear")(tiny_taxonomy)
    model.fit(texts, labels)
    assert topwear in model.labels
    best = {p.best.category_id for p in model.predict(texts)}
    assert best <= set(model.labels)


def test_min_confidence_backs_off_and_flags(tiny_rows, tiny_taxonomy) -> None:
    model, _, vtexts, _ = _fit("linear", tiny_rows, tiny_taxonomy)
    full = model.predict(vtexts)
    strict = model.predict(vtexts, min_confidence=0.999)
    assert any(p.needs_review for p in strict)
    for a, b in zip(full, strict):
        # never empty: the top level at least, and the full-depth guess as the suggestion
        assert a.best.path[: len(b.best.path)] == b.best.path
        if b.needs_review:
            assert b.best.confidence >= 0.999 or len(b.best.path) == 1
            assert b.suggested == a.best
        else:
            assert b.suggested is None and b.best == a.best


def test_coverage_falls_as_min_confidence_rises(tiny_rows, tiny_taxonomy) -> None:
    model, _, vtexts, _ = _fit("linear", tiny_rows, tiny_taxonomy)
    full_depth = [
        sum(1 for p in model.predict(vtexts, min_confidence=t) if not p.needs_review)
        for t in (0.0, 0.3, 0.6, 0.9, 0.99)
    ]
    assert full_depth == sorted(full_depth, reverse=True)


def test_single_class_is_refused(tiny_taxonomy) -> None:
    model = model_class("linear")(tiny_taxonomy)
    leaf = tiny_taxonomy.leaves[0].id
    with pytest.raises(DataError, match="single class"):
        model.fit(["a", "b"], [leaf, leaf])


def test_label_outside_taxonomy_is_refused(tiny_taxonomy) -> None:
    model = model_class("linear")(tiny_taxonomy)
    with pytest.raises(DataError, match="not a category"):
        model.fit(["a", "b"], [tiny_taxonomy.leaves[0].id, "Garden > Hoses"])


def test_predict_before_fit_is_refused(tiny_taxonomy) -> None:
    with pytest.raises(NotTrainedError):
        model_class("linear")(tiny_taxonomy).predict(["x"])


def test_unknown_kind_and_bad_config() -> None:
    with pytest.raises(ConfigError, match="linear"):
        model_class("nope")
    with pytest.raises(ConfigError, match="unknown LinearConfig option"):
        model_class("linear").config_class.from_dict({"nope": 1})
    with pytest.raises(ConfigError):
        model_class("ensemble").config_class.from_dict({"members": (("linear", {}),)})


def test_unknown_format_version_is_refused(tiny_rows, tiny_taxonomy, tmp_path) -> None:
    model, *_ = _fit("linear", tiny_rows, tiny_taxonomy)
    model.save(tmp_path / "m")
    manifest_path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="format_version 99"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "absent")


def test_ensemble_weights_are_on_the_simplex(tiny_rows, tiny_taxonomy) -> None:
    model, *_ = _fit("ensemble", tiny_rows, tiny_taxonomy)
    assert np.isclose(model.weights.sum(), 1.0) and (model.weights >= 0).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        {"epochs": 1, "max_steps": 3, "batch_size": 16},
        {"epochs": 1, "max_steps": 3, "batch_size": 16, "peft": "lora", "adversarial": "fgm"},
        {"epochs": 1, "max_steps": 2, "batch_size": 16, "adversarial": "pgd", "balance": True},
    ],
)
def test_finetune_fit_save_load(config, tiny_rows, tiny_taxonomy, tmp_path) -> None:
    cls = model_class("finetune")
    model = cls(tiny_taxonomy, cls.config_class.from_dict(config))
    texts, labels, vtexts, vlabels = _data(tiny_rows, tiny_taxonomy)
    report = model.fit(texts, labels, vtexts, vlabels)
    assert report.history and "train_loss" in report.history[0]
    preds = model.predict(vtexts, top_k=2)
    assert all(tiny_taxonomy.get(p.best.category_id).path == p.best.path for p in preds)
    model.save(tmp_path / "ft")
    assert (tmp_path / "ft" / "transformer" / "model.safetensors").exists()
    assert not list((tmp_path / "ft").rglob("*.bin"))
    assert list(load_model(tmp_path / "ft").predict(vtexts, top_k=2)) == list(preds)


def test_knn_votes_by_rare_identifiers(tiny_taxonomy) -> None:
    handbags = tiny_taxonomy.by_path("Accessories > Bags > Handbags").id
    backpacks = tiny_taxonomy.by_path("Accessories > Bags > Backpacks").id
    # most of the brand's bags are backpacks; the model code "fab28" marks its handbags
    texts = [f"hidesign fab28{c} leather bag" for c in "abc"]
    texts += [f"{brand} kg{n}x leather bag" for n in range(6) for brand in ("hidesign", "puma")]
    labels = [handbags] * 3 + [backpacks] * 12
    model = model_class("knn")(tiny_taxonomy, KnnConfig(max_df=0.25, k=3))
    model.fit(texts, labels)
    best = model.predict(["hidesign fab28zz leather bag"])[0].best
    assert best.category_id == handbags
    # nothing rare in common with any remembered row: every class scores the same
    flat = model._logits(["leather bag"])
    assert np.allclose(flat, flat[0, 0])


def test_knn_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_df"):
        KnnConfig(max_df=0.0)
    with pytest.raises(ConfigError, match="knn.k"):
        KnnConfig(k=0)


@pytest.mark.slow
def test_head_carries_its_int8_graph(tiny_rows, tiny_taxonomy, tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    import taxonomist.encoders.onnx as onnx_module

    cls = model_class("head")
    model = cls(tiny_taxonomy, cls.config_class.from_dict({"encoder": "minilm-int8", "epochs": 3}))
    texts, labels, vtexts, vlabels = _data(tiny_rows, tiny_taxonomy)
    model.fit(texts, labels, vtexts, vlabels)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "encoder.onnx").is_file()

    # another machine: an empty cache, and no exporting allowed
    monkeypatch.setenv("TAXONOMIST_CACHE_DIR", str(tmp_path / "elsewhere"))

    def no_export(*args, **kwargs):
        raise AssertionError("the saved graph should be used, not a new export")

    monkeypatch.setattr(onnx_module, "export_onnx", no_export)
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(vtexts), model.predict_proba(vtexts))


@pytest.mark.parametrize("kind", ["linear", "head", "knn"])
def test_refit_full_keeps_calibration_and_label_space(kind, tiny_rows, tiny_taxonomy) -> None:
    model, report, vtexts, vlabels = _fit(kind, tiny_rows, tiny_taxonomy)
    texts, labels, _, _ = _data(tiny_rows, tiny_taxonomy)
    temperature, label_space = model.temperature, list(model.labels)
    model.refit_full(texts + vtexts, labels + vlabels)
    assert model.refitted and model.temperature == temperature
    assert model.labels == label_space
    # the validation rows are now training rows: the model should fit them well
    hits = [p.best.category_id == g for p, g in zip(model.predict(vtexts), vlabels)]
    assert np.mean(hits) >= report.valid_metrics["accuracy"]


def _fit_tiny_finetune(tiny_transformer, rows, taxonomy, device: str):
    cls = model_class("finetune")
    config = {"base": str(tiny_transformer), "epochs": 2, "batch_size": 16, "lr": 1e-3}
    model = cls(taxonomy, cls.config_class.from_dict(config))
    model.device = device
    texts, labels, vtexts, vlabels = _data(rows, taxonomy)
    model.fit(texts, labels, vtexts, vlabels)
    return model, vtexts


def test_finetune_round_trip_on_a_tiny_transformer(
    tiny_transformer, tiny_rows, tiny_taxonomy, tmp_path
) -> None:
    model, vtexts = _fit_tiny_finetune(tiny_transformer, tiny_rows, tiny_taxonomy, "cpu")
    preds = model.predict(vtexts, top_k=2)
    assert all(tiny_taxonomy.get(p.best.category_id).path == p.best.path for p in preds)
    model.save(tmp_path / "ft")
    assert list(load_model(tmp_path / "ft", "cpu").predict(vtexts, top_k=2)) == list(preds)


def test_ensemble_members_get_its_device(tiny_rows, tiny_taxonomy, tmp_path) -> None:
    model, *_ = _fit("ensemble", tiny_rows, tiny_taxonomy)
    model.save(tmp_path / "ens")
    loaded = load_model(tmp_path / "ens", "auto")
    assert loaded.device == "auto" and {m.device for m in loaded.members} == {"auto"}


@pytest.mark.gpu
def test_finetune_trains_on_a_gpu_and_loads_on_the_cpu(
    tiny_transformer, tiny_rows, tiny_taxonomy, tmp_path
) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU here")
    model, vtexts = _fit_tiny_finetune(tiny_transformer, tiny_rows, tiny_taxonomy, "cuda")
    assert next(model._net.parameters()).device.type == "cuda"
    model.save(tmp_path / "ft")
    on_cpu = load_model(tmp_path / "ft", "cpu")
    assert next(on_cpu._net.parameters()).device.type == "cpu"
    a = [p.best.category_id for p in model.predict(vtexts)]
    b = [p.best.category_id for p in on_cpu.predict(vtexts)]
    assert a == b
    gpu_logits, cpu_logits = model._logits(vtexts), on_cpu._logits(vtexts)
    np.testing.assert_allclose(gpu_logits, cpu_logits, atol=1e-3)


def test_a_knn_vote_skips_products_not_remembered():
    from scipy.sparse import csr_matrix

    from taxonomist.models.knn import vote

    sims = csr_matrix(np.array([[0.9, 0.5, 0.1]]))
    # the nearest product's label is unknown (-1): the next nearest decides
    log_votes = vote(sims, np.array([-1, 1, 0]), 2, k=1, power=1.0, smoothing=0.01)
    np.testing.assert_allclose(np.exp(log_votes), [[0.01, 0.51]])
