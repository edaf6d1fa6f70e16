"""Whole-model export: `export_model(model_dir, out_dir)` writes a directory that the
torch-free runtime (`taxonomist.export.runtime.OnnxModel`, kind `onnx`) loads.

What goes to ONNX: the transformer encoder with its pooling and normalisation (the int8 graph
a `minilm-int8` model already carries, or the float model exported once), the image backbone
with its average pooling (EfficientNet-Lite, fine-tuned blocks included), the head networks,
the gated early-fusion network and the TF-IDF scoring matrices. What stays in numpy: TF-IDF
featurisation (scikit-learn's tokenisation and idf weighting, reproduced exactly by
rebuilding the vectorisers, which ONNX would not do byte for byte), photo decoding and
preprocessing (PIL and numpy already, the same function the torch encoder uses), the
rare-n-gram neighbour vote, pooling, temperature and the taxonomy decoding. Tokenisation is
the `tokenizers` package's, from the tokenizer file the encoder itself used.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError
from ..persistence import read_manifest, save_model_dir

logger = logging.getLogger(__name__)

FORMATS = ("onnx",)
EXPORTABLE = "linear, knn, head, image, fusion and ensembles of them"
EXPORT_FORMAT = 2  # bump when the layout of an export changes (2: the ensemble cascade)


def export_model(model_dir: str | Path, out_dir: str | Path, *, fmt: str = "onnx") -> Path:
    """Export the trained model in `model_dir` to `out_dir` (which must not exist yet, or be
    empty) as ONNX graphs plus the numpy parts; returns `out_dir`.

    Raises:
        ConfigError: an unknown format, or an `out_dir` that holds files.
        ModelError: a model kind or encoder that cannot be exported.
    """
    from ..models import load_model

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    source, out = Path(model_dir), Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not empty; export into a new directory")
    if out.resolve() == source.resolve():
        raise ConfigError("the export directory must differ from the model directory")
    try:
        import onnx  # noqa: F401 - the graphs are built with it
    except ImportError:
        raise ModelError("export needs onnx; pip install 'taxonomist[onnx]'") from None
    manifest = read_manifest(source)
    if manifest.get("kind") == "onnx":
        raise ConfigError(f"{source} is already an export")
    model = load_model(source, "cpu")

    def write(directory: Path) -> None:
        root = _export_part(model, source, directory / "parts" / "0", manifest)
        (directory / "graph.json").write_text(json.dumps(root, indent=1), "utf-8")

    export_manifest = {
        "kind": "onnx",
        "config": {},
        "labels": model.labels,
        "label_count": len(model.labels),
        "temperature": model.temperature,
        "export_format": EXPORT_FORMAT,
        "source": {
            "kind": model.kind,
            "directory": str(source.resolve()),
            "created_at": manifest.get("created_at"),
            "package_version": manifest.get("package_version"),
        },
        "taxonomy": manifest.get("taxonomy"),
        "training": {"valid_metrics": manifest.get("training", {}).get("valid_metrics", {})},
        # the per-category review thresholds: an export flags the rows its original flags
        "routing": manifest.get("routing"),
    }
    return save_model_dir(out, manifest=export_manifest, taxonomy=model.taxonomy, write_files=write)


def _export_part(model: Any, source: Path, target: Path, manifest: dict[str, Any]) -> dict:
    """Write one model's parts under `target`; return its node of graph.json (paths relative
    to the export's root)."""
    from . import graphs

    target.mkdir(parents=True, exist_ok=True)
    rel = str(Path(*target.parts[-2:]))  # parts/<n>
    node: dict[str, Any] = {"kind": model.kind, "dir": rel, "temperature": model.temperature}
    if model.kind == "linear":
        from safetensors.numpy import save_file

        shutil.copyfile(source / "vocabulary.json", target / "vocabulary.json")
        tfidf = model._tfidf
        save_file(tfidf.idf_tensors(), str(target / "tfidf.safetensors"))
        graphs.sparse_linear(model._coef, model._intercept, target / "scoring.onnx")
        node["word_ngrams"] = list(model.config.word_ngrams)
        node["char_ngrams"] = list(model.config.char_ngrams)
    elif model.kind == "knn":  # TF-IDF and a sparse vote: numpy and scipy, as trained
        shutil.copytree(source, target, dirs_exist_ok=True)
    elif model.kind == "head":
        node["encoder"] = export_encoder(model.encoder, target)
        graphs.mlp(graphs.mlp_layers(model._net.state_dict()), target / "head.onnx")
    elif model.kind == "ensemble":
        node["weights"] = [float(w) for w in model.weights]
        # the cascade travels with the pool, else an export of a model that answers most
        # rows from its TF-IDF members would always run the encoder and differ in top-1
        node["cascade"] = (
            None
            if model.cascade_threshold is None
            else {
                "threshold": float(model.cascade_threshold),
                "cheap": [int(i) for i in model._cheap_members()],
                "default": bool(model.config.cascade),
            }
        )
        node["members"] = []
        for n, (member, sub) in enumerate(zip(model.members, manifest["members"])):
            member_manifest = read_manifest(source / sub)
            part = target.parent / f"{target.name}.{n}"
            node["members"].append(_export_part(member, source / sub, part, member_manifest))
    elif model.kind == "image":
        from safetensors.numpy import save_file

        node["image_encoder"] = export_image_encoder(model.encoder, target)
        graphs.mlp(graphs.mlp_layers(model._net.state_dict()), target / "head.onnx")
        # rows without a photo get the class prior as their logits
        save_file(
            {"log_prior": np.ascontiguousarray(model.log_prior)}, str(target / "prior.safetensors")
        )
    elif model.kind == "fusion":
        node.update(_export_fusion(model, source, target, manifest))
    else:
        raise ModelError(
            f"a '{model.kind}' model cannot be exported to ONNX yet ({EXPORTABLE} can)"
        )
    return node


def _export_fusion(model: Any, source: Path, target: Path, manifest: dict[str, Any]) -> dict:
    """Late fusion's members as parts of their own, early fusion's text encoder, image
    encoder (when no image member carries one) and gated network beside them."""
    from . import graphs

    node: dict[str, Any] = {
        "mode": model.config.mode,
        "weights": [float(w) for w in model.weights],
        "weights_without_image": [float(w) for w in model.weights_without_image],
        "image_prior_correction": float(model.config.image_prior_correction),
        "members": [],
    }
    for n, (member, sub) in enumerate(zip(model.members, manifest["members"])):
        part = target.parent / f"{target.name}.{n}"
        node["members"].append(
            _export_part(member, source / sub, part, read_manifest(source / sub))
        )
    if model.uses_early:
        node["text_encoder"] = export_encoder(model.text_encoder, target)
        node["stacks"] = bool(model.stacks)
        if not model.uses_late:  # early fusion alone: the image encoder is its own
            node["image_encoder"] = export_image_encoder(model._image_member().encoder, target)
        graphs.gated_fusion(model._net.state_dict(), target / "fusion.onnx")
    return node


def export_encoder(encoder: Any, target: Path) -> dict[str, Any]:
    """The sentence encoder as `encoder.onnx` + `tokenizer.json` under `target` (or, for the
    dependency-free fake encoder, its settings); its node of graph.json."""
    from ..encoders.fake import FakeEncoder
    from ..encoders.onnx import OnnxEncoder

    inner = getattr(encoder, "inner", encoder)  # behind the embedding cache
    if isinstance(inner, FakeEncoder):
        return {"type": "fake", "dim": inner.dim, "name": inner.name}
    if isinstance(inner, OnnxEncoder):  # the int8 graph the model carries: the same vectors
        shutil.copyfile(inner.graph_path, target / "encoder.onnx")
        _save_tokenizer(inner.model_dir, target)
        # int8 graphs run one text at a time (see OnnxEncoder._encode); so must the runtime
        return {
            "type": "transformer",
            "one_per_run": True,
            "max_length": inner.max_length,
            "name": inner.name,
        }
    from ..encoders.sentence import SentenceTransformerEncoder

    if isinstance(inner, SentenceTransformerEncoder) and Path(inner.model_ref).is_dir():
        from ..encoders.onnx import export_onnx

        model_dir = Path(inner.model_ref)
        max_length = int(inner._load().max_seq_length or 512)
        export_onnx(model_dir, target / "encoder.onnx", quantize=False)
        _save_tokenizer(model_dir, target)
        return {
            "type": "transformer",
            "one_per_run": False,
            "max_length": max_length,
            "name": inner.name,
        }
    raise ModelError(
        f"encoder {inner.name!r} cannot be exported to ONNX (MiniLM, minilm-int8 and local "
        "sentence-transformers directories can)"
    )


def export_image_encoder(encoder: Any, target: Path) -> dict[str, Any]:
    """The image backbone (fine-tuned blocks included) with its average pooling as
    `image_encoder.onnx` under `target` (or the fake encoder's settings); its node of
    graph.json. Decoding, resizing and normalisation stay in PIL and numpy
    (`taxonomist.images.preprocess`, the very function the torch encoder feeds itself with),
    so the runtime's pixels are the original's bit for bit."""
    from ..encoders.image import FakeImageEncoder, ImageEncoder

    spec = {"name": encoder.name, "size": encoder.size, "fit": encoder.fit, "dim": encoder.dim}
    if isinstance(encoder, FakeImageEncoder):
        return {"type": "fake", **spec}
    if not isinstance(encoder, ImageEncoder):
        raise ModelError(f"image encoder {encoder!r} cannot be exported to ONNX")
    import warnings

    import torch

    from ..encoders.image import pool

    net = encoder.net

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels):
            return pool(self.net, pixels)

    was = net.training
    net.eval()
    sample = torch.zeros((2, 3, encoder.size, encoder.size), dtype=torch.float32)
    logger.info("exporting %s to ONNX", encoder.name)
    try:
        # the exporter narrates its work (and the operators of packages not installed)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled().to("cpu"),
                (sample,),
                str(target / "image_encoder.onnx"),
                dynamo=True,
                input_names=["pixels"],
                output_names=["features"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                external_data=False,
                verbose=False,
            )
    finally:
        net.train(was)
    return {"type": "efficientnet", "variant": encoder.variant, **spec}


def _save_tokenizer(model_dir: Path, target: Path) -> None:
    """The fast tokenizer transformers builds for `model_dir`, as one tokenizer.json."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
