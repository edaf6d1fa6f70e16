"""The search spaces of `tune` stay in step with the kinds' configs."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from taxonomist.models import model_class
from taxonomist.tuning import SPACES, _sample


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_every_sample_is_a_valid_config(kind) -> None:
    cls = model_class(kind).config_class
    rng = np.random.default_rng(0)
    seen: dict[str, set] = {name: set() for name in SPACES[kind]}
    for _ in range(20):
        sample = _sample(kind, {}, rng)
        config = asdict(cls.from_dict(sample))  # an unknown or invalid key raises
        for name in SPACES[kind]:
            # the drawn value reaches the config as drawn (no field silently ignored)
            drawn = sample[name]
            assert config[name] == (list(drawn) if isinstance(drawn, tuple) else drawn) or (
                config[name] == drawn
            )
            seen[name].add(repr(drawn))
    # every setting of the space really varies: a space that always draws one value is a typo
    assert all(len(values) > 1 for values in seen.values()), seen


def test_a_logreg_base_keeps_its_drawn_c() -> None:
    sample = _sample("linear", {"classifier": "logreg", "C": 20.0}, np.random.default_rng(1))
    assert sample["C"] != 20.0 and 0.05 <= sample["C"] <= 5.0
