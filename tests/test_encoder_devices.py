"""`--device` reaches every kind that encodes, and a loaded model checks its encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taxonomist.encoders import FakeEncoder, encoder_device
from taxonomist.errors import ConfigError, ModelError
from taxonomist.models import load_model, model_class

FAST_HEAD = {"encoder": "fake", "hidden": 32, "epochs": 5, "batch_size": 32}


def test_cpu_only_encoders_stay_on_the_cpu() -> None:
    for spec in ("minilm-int8", "e5", "fake"):
        assert encoder_device(spec, "auto") == "cpu"
    with pytest.raises(ConfigError, match="unknown device"):
        encoder_device("minilm-int8", "gpu0")
    from taxonomist.devices import resolve_device

    assert encoder_device("minilm", "auto") == resolve_device("auto")


def _head(tiny_rows, tiny_taxonomy, config=FAST_HEAD):
    cls = model_class("head")
    model = cls(tiny_taxonomy, cls.config_class.from_dict(config))
    texts = [r["title"] for r in tiny_rows]
    labels = [tiny_taxonomy.by_path(r["category"]).id for r in tiny_rows]
    model.fit(texts, labels, texts[::5], labels[::5])
    return model, texts


@pytest.mark.parametrize(("field", "value"), [("encoder", "another-encoder"), ("embedding_dim", 7)])
def test_head_refuses_an_encoder_other_than_its_manifests(
    tiny_rows, tiny_taxonomy, tmp_path, field, value
) -> None:
    model, texts = _head(tiny_rows, tiny_taxonomy)
    model.save(tmp_path / "m")
    manifest_path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[field] = value
    manifest_path.write_text(json.dumps(manifest))
    if field == "embedding_dim":  # the layer shapes would not load; the check comes first
        with pytest.raises((ModelError, RuntimeError)):
            load_model(tmp_path / "m").predict_proba(texts[:2])
        return
    with pytest.raises(ModelError, match="trained with encoder 'another-encoder'"):
        load_model(tmp_path / "m").predict_proba(texts[:2])


def test_head_encodes_on_the_device_it_is_loaded_on(tiny_rows, tiny_taxonomy, tmp_path) -> None:
    from taxonomist.devices import resolve_device

    model, texts = _head(tiny_rows, tiny_taxonomy)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="auto")
    np.testing.assert_allclose(loaded.predict_proba(texts[:5]), model.predict_proba(texts[:5]))
    assert loaded.device == "auto"
    # the fake encoder is CPU-only; what the kind asks for is what encoder_device gives
    assert encoder_device(loaded.config.encoder, loaded.device) == "cpu"
    assert encoder_device("minilm", loaded.device) == resolve_device("auto")


class _EncoderWithFiles(FakeEncoder):
    """The fake encoder, but fixed by a file as the int8 graph fixes `minilm-int8`."""

    def __init__(self, graph: Path) -> None:
        super().__init__()
        self.graph = graph

    def files(self) -> dict[str, Path]:
        return {"encoder.onnx": self.graph}


EARLY = {
    "mode": "early",
    "text_encoder": "fake",
    "image_config": {"encoder": "fake", "epochs": 5, "hidden": 32},
    "hidden": 32,
    "epochs": 5,
    "batch_size": 32,
}


def test_fusion_saves_its_text_encoder_and_loads_members_on_its_device(
    photo_corpus, tmp_path
) -> None:
    taxonomy, items, labels = photo_corpus.taxonomy, photo_corpus.items, photo_corpus.labels
    graph = tmp_path / "graph.bin"
    graph.write_bytes(b"stands for an encoder's weights")
    for mode in ("early", "late"):
        cls = model_class("fusion")
        model = cls(taxonomy, cls.config_class.from_dict({**EARLY, "mode": mode}))
        model._text_encoder = _EncoderWithFiles(graph)
        model.fit(items, labels, items[::5], labels[::5])
        saved = model.save(tmp_path / mode)
        manifest = json.loads((saved / "manifest.json").read_text())
        loaded = load_model(saved, device="auto")
        assert all(m.device == "auto" for m in loaded.members)
        if mode == "early":
            assert (saved / "encoder.onnx").read_bytes() == graph.read_bytes()
            assert manifest["early"]["text_encoder_files"] == ["encoder.onnx"]
            np.testing.assert_allclose(
                loaded.predict_proba(items[:4]), model.predict_proba(items[:4]), atol=1e-6
            )
            manifest["early"]["text_encoder"] = "a different encoder"
            (saved / "manifest.json").write_text(json.dumps(manifest))
            with pytest.raises(ModelError, match="a different encoder"):
                load_model(saved).predict_proba(items[:2])
