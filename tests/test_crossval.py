"""Out-of-fold probabilities and the composition an ensemble keeps."""

from __future__ import annotations

import numpy as np
import pytest

from taxonomist.crossval import cross_val_proba
from taxonomist.errors import ConfigError, DataError
from taxonomist.models import load_model, model_class
from taxonomist.selection import paired_z, select_composition


def _data(rows, taxonomy):
    return [r["title"] for r in rows], [taxonomy.by_path(r["category"]).id for r in rows]


def test_out_of_fold_rows_are_scored_by_models_that_never_saw_them(
    tiny_rows, tiny_taxonomy
) -> None:
    texts, labels = _data(tiny_rows, tiny_taxonomy)
    oof = cross_val_proba("linear", {}, texts, labels, 4, taxonomy=tiny_taxonomy)
    assert oof.logits.shape == (len(texts), len(set(labels)))
    assert np.allclose(oof.proba.sum(1), 1)
    y = np.array([oof.labels.index(c) for c in labels])
    oof_acc = (oof.proba.argmax(1) == y)[oof.seen].mean()
    # a model scoring its own training rows is near perfect; held-out rows are not
    full = model_class("linear")(tiny_taxonomy)
    full.fit(texts, labels)
    assert (full.predict_proba(texts).argmax(1) == y).mean() > oof_acc > 0.4
    # duplicated titles never straddle folds
    by_title: dict[str, set[int]] = {}
    for t, f in zip(texts, oof.folds):
        by_title.setdefault(t.casefold(), set()).add(int(f))
    assert all(len(f) == 1 for f in by_title.values())


def test_head_folds_share_one_encoding(tiny_rows, tiny_taxonomy) -> None:
    from taxonomist.encoders import build_encoder

    class Counting:
        calls = 0

    inner = build_encoder("fake")
    encode = inner.encode

    def counted(texts, **kw):
        Counting.calls += len(texts)
        return encode(texts, **kw)

    inner.encode = counted  # type: ignore[method-assign]
    texts, labels = _data(tiny_rows, tiny_taxonomy)
    cfg = {"encoder": "fake", "epochs": 3, "hidden": 0}
    cross_val_proba("head", cfg, texts, labels, 3, taxonomy=tiny_taxonomy, encoder=inner)
    assert Counting.calls == len(set(texts))  # once per distinct title, not once per fold


def test_bad_fold_requests_are_clear(tiny_rows, tiny_taxonomy) -> None:
    texts, labels = _data(tiny_rows, tiny_taxonomy)
    with pytest.raises(DataError, match="fewer than the 5 folds"):
        cross_val_proba("linear", {}, texts[:3], labels[:3], 5, taxonomy=tiny_taxonomy)
    with pytest.raises(DataError, match="one class"):
        cross_val_proba("linear", {}, texts[:9], [labels[0]] * 9, 3, taxonomy=tiny_taxonomy)
    with pytest.raises(ConfigError):
        model_class("ensemble").config_class.from_dict({"folds": 1})


def test_selection_keeps_the_simpler_unless_the_richer_is_better_beyond_noise() -> None:
    rng = np.random.default_rng(0)
    n, c = 2000, 4
    y = rng.integers(0, c, n)
    folds = np.arange(n) % 5

    def member(acc: float) -> np.ndarray:
        right = rng.random(n) < acc
        guess = np.where(right, y, (y + rng.integers(1, c, n)) % c)
        lp = np.full((n, c), np.log(0.1))
        lp[np.arange(n), guess] = np.log(0.7)
        return lp

    good = member(0.8)
    copy = good + rng.normal(0, 1e-3, good.shape)  # adds nothing
    sel = select_composition([good, copy], y, folds, ["a", "b"])
    assert sel.chosen == (0,) and sel.weights.tolist() == [1.0, 0.0]
    # independent errors: a vote of three really helps (two equally sure members that
    # disagree are a coin toss, so a pair would add no right answers)
    other, third = member(0.8), member(0.8)
    sel = select_composition([good, other, third], y, folds, ["a", "b", "c"])
    assert sel.chosen == (0, 1, 2) and all(sel.weights > 0)
    assert [r["verdict"] for r in sel.candidates][-1] == "kept: better beyond noise"
    assert paired_z(np.ones(10), np.ones(10)) == 0.0


def test_a_better_calibrated_but_less_accurate_candidate_is_rejected() -> None:
    # fashion's lesson: lower log-loss bought with more wrong answers is not a better model
    rng = np.random.default_rng(1)
    n, c = 2000, 4
    y = rng.integers(0, c, n)
    folds = np.arange(n) % 5

    def member(acc: float, p_guess: float) -> np.ndarray:
        right = rng.random(n) < acc
        guess = np.where(right, y, (y + rng.integers(1, c, n)) % c)
        lp = np.full((n, c), np.log((1 - p_guess) / (c - 1)))
        lp[np.arange(n), guess] = np.log(p_guess)
        return lp

    sharp, soft = member(0.85, 0.997), member(0.80, 0.55)
    sel = select_composition([sharp, soft], y, folds, ["sharp", "soft"])
    verdicts = {tuple(r["members"]): r for r in sel.candidates}
    assert verdicts[("soft",)]["oof_log_loss"] < verdicts[("sharp",)]["oof_log_loss"]
    assert verdicts[("soft",)]["z_vs_incumbent"] > 1.96
    assert verdicts[("soft",)]["verdict"] == "rejected: more out-of-fold errors"
    assert sel.chosen != (1,) and "no more out-of-fold errors" in sel.rule


def test_ensemble_manifest_records_every_candidate(tiny_rows, tiny_taxonomy, tmp_path) -> None:
    texts, labels = _data(tiny_rows, tiny_taxonomy)
    cls = model_class("ensemble")
    config = cls.config_class.from_dict(
        {"members": (("linear", {}), ("knn", {})), "folds": 3, "grid_step": 0.25}
    )
    model = cls(tiny_taxonomy, config)
    model.fit(texts[:130], labels[:130], texts[130:], labels[130:])
    sel = model.selection
    assert sel is not None and len(sel["candidates"]) == 3 and "paired z" in sel["rule"]
    assert all("oof_log_loss" in c and "oof_accuracy" in c for c in sel["candidates"])
    assert len(model.members) == len(sel["chosen"]) == len(model.weights)
    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.selection == sel
    assert np.allclose(loaded.predict_proba(texts[130:]), model.predict_proba(texts[130:]))


def test_best_offers_a_fine_tuned_member_only_on_a_gpu() -> None:
    from taxonomist.training import resolve_kind, with_device_members

    chosen, config = resolve_kind("best", None, {})
    on_gpu = with_device_members("best", None, chosen, config, "cuda:0")
    assert on_gpu.members[-1][0] == "finetune" and len(on_gpu.members) == len(config.members) + 1
    assert with_device_members("best", None, chosen, config, "cpu") == config
    chosen, config = resolve_kind("balanced", None, {})
    assert with_device_members("balanced", None, chosen, config, "cuda") == config
