"""The search spaces of `tune` stay in step with the kinds' configs."""

from __future__ import annotations

import numpy as np
import pytest

from taxonomist.models import model_class
from taxonomist.tuning import SPACES, _sample


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_every_sample_is_a_valid_config(kind) -> None:
    cls = model_class(kind).config_class
    rng = np.random.default_rng(0)
    for _ in range(20):
        config = cls.from_dict(_sample(kind, {}, rng))  # an unknown or invalid key raises
        assert isinstance(config, cls)
