from __future__ import annotations

import numpy as np
import pytest

from taxonomist.encoders import EncoderSet, FakeEncoder
from taxonomist.errors import ConfigError
from taxonomist.taxonomy import Taxonomy
from taxonomist.zeroshot import ZeroShotClassifier, ZeroShotConfig, flat_nearest_path


def _clf(taxonomy: Taxonomy, **config) -> ZeroShotClassifier:
    return ZeroShotClassifier(taxonomy, EncoderSet({}, FakeEncoder()), ZeroShotConfig(**config))


def test_predictions_are_valid_leaf_paths_with_monotone_level_confidences(
    tiny_taxonomy: Taxonomy, tiny_rows
) -> None:
    clf = _clf(tiny_taxonomy)
    preds = clf.predict([r["title"] for r in tiny_rows], [r["id"] for r in tiny_rows], top_k=3)
    assert len(preds) == len(tiny_rows)
    for pred in preds:
        assert len(pred.candidates) == 3
        confs = [c.confidence for c in pred.candidates]
        assert confs == sorted(confs, reverse=True)
        for cand in pred.candidates:
            cat = tiny_taxonomy.get(cand.category_id)
            assert cat.is_leaf and cat.path == cand.path
            levels = cand.level_confidences
            assert len(levels) == len(cand.path)
            assert all(a >= b - 1e-9 for a, b in zip(levels, levels[1:]))
            assert np.isclose(levels[-1], cand.confidence)


def test_zero_shot_beats_chance_on_tiny_corpus(tiny_taxonomy: Taxonomy, tiny_rows) -> None:
    clf = _clf(tiny_taxonomy)
    clf = clf.adapt([r["title"] for r in tiny_rows])
    preds = clf.predict([r["title"] for r in tiny_rows])
    gold = [tuple(r["category"].split(" > ")) for r in tiny_rows]
    level1 = np.mean([p.best.path[0] == g[0] for p, g in zip(preds, gold)])
    assert level1 > 0.5  # 4 top-level classes: chance is ~0.25


def test_adapt_changes_prototypes_without_labels(tiny_taxonomy: Taxonomy, tiny_rows) -> None:
    clf = _clf(tiny_taxonomy)
    encoder = clf.encoders.for_language("en")
    before = clf.prototypes(encoder, "en").copy()
    adapted = clf.adapt([r["title"] for r in tiny_rows])
    after = adapted.prototypes(encoder, "en")
    assert not np.allclose(before, after)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)
    # the original is untouched: other threads may still be predicting with it
    np.testing.assert_array_equal(clf.prototypes(encoder, "en"), before)


def test_chinese_text_uses_chinese_category_names() -> None:
    tax = Taxonomy.from_paths([("Electronics", "Phones"), ("Apparel", "Shirts")])
    clf = _clf(tax)
    assert clf.category_texts("zh")[0][0] == "Electronics"  # no zh names: falls back
    assert clf.predict(["手机"])[0].best.path in {c.path for c in tax.leaves}


def test_flat_baseline_returns_leaf_paths(tiny_taxonomy: Taxonomy) -> None:
    paths = flat_nearest_path(tiny_taxonomy, FakeEncoder(), ["Nike Men Running Shoes"])
    assert paths[0] in {c.path for c in tiny_taxonomy.leaves}


@pytest.mark.parametrize(
    "bad",
    [
        dict(templates=()),
        dict(templates=("{nope}",)),
        dict(beam_width=0),
        dict(level_temperature=0),
        dict(adapt_weight=2.0),
        dict(adapt_iterations=0),
        dict(neighbour_smoothing=1.0),
        dict(neighbour_k=0),
    ],
)
def test_config_rejects_bad_values(bad) -> None:
    with pytest.raises(ConfigError):
        ZeroShotConfig(**bad)


def test_neighbour_smoothing_travels_with_the_adapted_state(tiny_taxonomy, tiny_rows) -> None:
    titles = [r["title"] for r in tiny_rows]
    adapted = _clf(tiny_taxonomy).adapt(titles)
    state = adapted.state()
    ((key, emb),) = state["neighbour_embeddings"].items()
    # each title once
    assert len(emb) == len(set(titles)) == len(state["neighbour_smoothed"][key])
    # a worker with the state predicts exactly as the adapted classifier
    worker = _clf(tiny_taxonomy).with_state(state)
    np.testing.assert_allclose(
        worker.candidate_log_probs(titles), adapted.candidate_log_probs(titles), atol=1e-6
    )
    unsmoothed = _clf(tiny_taxonomy, neighbour_smoothing=0).adapt(titles)
    assert not unsmoothed.state()["neighbour_embeddings"]
    assert not np.allclose(
        unsmoothed.candidate_log_probs(titles), adapted.candidate_log_probs(titles)
    )
    state["neighbour_smoothed"][key] = state["neighbour_smoothed"][key][:-1]
    with pytest.raises(ValueError, match="neighbour_smoothed"):
        _clf(tiny_taxonomy).with_state(state)


def test_a_flat_label_set_is_neither_smoothed_nor_given_a_prior(tiny_rows) -> None:
    # its top level is its leaves: smoothing would blur the distinctions themselves, and
    # a prior over them learnt from zero-shot likelihoods runs away
    flat = Taxonomy.from_paths([(c.split(" > ")[-1],) for c in {r["category"] for r in tiny_rows}])
    adapted = _clf(flat).adapt([r["title"] for r in tiny_rows])
    assert not adapted.state()["neighbour_embeddings"]
    assert not adapted.state()["log_prior"]
