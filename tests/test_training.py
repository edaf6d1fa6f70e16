from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxonomist.calibration import fit_temperature, softmax
from taxonomist.encoders.onnx import onnx_available
from taxonomist.errors import ConfigError, DataError
from taxonomist.training import Preset, group_split, resolve_kind, train_model


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Red Shirt", "red  shirt!", "Blue Jeans", "Socks", "Hat"]),
        min_size=1,
        max_size=60,
    )
)
def test_identical_titles_never_straddle_the_split(titles) -> None:
    train, valid = group_split(titles, 0.3, seed=1)
    assert sorted(train + valid) == list(range(len(titles)))
    key = {"red shirt": "a", "red  shirt!": "a"}
    side = {}
    for i in train:
        side.setdefault(key.get(titles[i].lower(), titles[i]), set()).add("train")
    for i in valid:
        side.setdefault(key.get(titles[i].lower(), titles[i]), set()).add("valid")
    assert all(len(s) == 1 for s in side.values())


def test_split_is_deterministic_and_near_fraction() -> None:
    titles = [f"product {i}" for i in range(2000)]
    a = group_split(titles, 0.1, seed=3)
    assert a == group_split(titles, 0.1, seed=3)
    assert 150 < len(a[1]) < 250


def test_presets_and_overrides() -> None:
    kind, config = resolve_kind("fast", None, {"balance": True, "seed": 1})
    assert kind == "linear" and config.balance
    kind, config = resolve_kind("balanced", None, {"encoder": "fake"})
    assert kind == "ensemble"
    assert dict(config.members)["head"]["encoder"] == "fake"
    assert resolve_kind("fast", "head", {})[0] == "head"
    with pytest.raises(ConfigError, match="fast"):
        Preset.from_str("fastest")


def test_balanced_preset_encodes_with_int8_minilm_where_onnx_runtime_is_installed() -> None:
    _, config = resolve_kind("balanced", None, {})
    expected = "minilm-int8" if onnx_available() else "minilm"
    assert dict(config.members)["head"]["encoder"] == expected
    _, best = resolve_kind("best", None, {})
    assert dict(best.members)["head"].get("encoder", "minilm") == "minilm"


def test_too_few_rows_for_a_validation_split(tiny_taxonomy, tmp_path) -> None:
    leaves = [c.id for c in tiny_taxonomy.leaves]
    with pytest.raises(DataError, match="too few rows for a validation split"):
        train_model(["a b", "c d", "e f"], leaves[:3], tiny_taxonomy, tmp_path / "m")


def test_temperature_scaling_softens_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), y] += 1.0
    sharp = logits * 10  # right ~60% of the time, but ~100% sure
    t = fit_temperature(sharp, y)
    assert t > 3
    assert softmax(sharp, t).max(1).mean() < softmax(sharp).max(1).mean()
