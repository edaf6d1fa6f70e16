"""Why a model predicted what it did: the words that drove it, the training products nearest
to it, and for photos the regions that mattered.

- Words of a `linear` model: exact contributions. Its score for a class is a sum over TF-IDF
  features of value x weight (plus an intercept); each feature's share goes to the words it
  came from (a word n-gram to its words, equally; a character n-gram, taken inside a word, to
  that word), so the words' contributions add up to the score minus the intercept.
- Words of any other model (the pooled ensemble, a head, fusion): occlusion. Each word is
  left out in turn and the drop in the predicted category's probability is its weight.
- Nearest training products: from the index saved with the model (`neighbours`).
- Photos, for kinds that see them: a grid of grey patches, one at a time; the drop in the
  predicted category's probability per cell is the heat map.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..items import Item, ModelInput
from .neighbours import TrainingIndex

TOKEN = re.compile(r"(?u)\b\w+\b")  # the `linear` kind's word tokens


@dataclass
class WordWeight:
    word: str
    position: int  # index among the title's whitespace-separated words
    weight: float


@dataclass
class Explanation:
    id: str
    category: str  # category id of the prediction explained
    path: str
    probability: float
    method: str  # "linear-exact" or "occlusion"
    words: list[WordWeight] = field(default_factory=list)  # most supportive first
    neighbours: list[dict[str, Any]] = field(default_factory=list)
    image_heatmap: list[list[float]] | None = None  # rows x cols of probability drops

    def top_words(self, n: int = 3) -> list[str]:
        return [w.word for w in self.words[:n] if w.weight > 0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "path": self.path,
            "probability": round(self.probability, 6),
            "method": self.method,
            "words": [
                {"word": w.word, "position": w.position, "weight": round(w.weight, 6)}
                for w in self.words
            ],
            "neighbours": self.neighbours,
            "image_heatmap": self.image_heatmap,
        }


class Explainer:
    """Explains predictions of one loaded model (`models.load_model`).

    Args:
        model: the trained model.
        model_dir: its directory, for the saved training index (optional).
        grid: cells per side of the photo occlusion grid.
    """

    def __init__(self, model, model_dir: str | Path | None = None, grid: int = 4) -> None:
        self.model = model
        self.index = TrainingIndex.load(model_dir) if model_dir else None
        self.grid = grid
        self._features: dict[int, tuple[str, str]] | None = None

    # -- words ---------------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        return self.model.kind == "linear"

    def _feature_names(self) -> dict[int, tuple[str, str]]:
        """Column -> ("word" | "char", n-gram), built once from the vocabularies."""
        if self._features is None:
            vocab = self.model._tfidf.vocabulary()
            width = len(vocab["word"])
            names = {i: ("word", g) for g, i in vocab["word"].items()}
            names.update({width + i: ("char", g) for g, i in vocab["char"].items()})
            self._features = names
        return self._features

    def linear_words(self, text: str, column: int, x: Any = None) -> list[WordWeight]:
        """Exact per-word contributions to the linear model's score for `column` (`x`: the
        text's feature row, when the caller has transformed a batch at once)."""
        model = self.model
        words = text.split()
        lowered = [w.lower() for w in words]
        tokens = [(t, i) for i, w in enumerate(lowered) for t in TOKEN.findall(w)]
        x = model._tfidf.transform([text]).tocsr() if x is None else x
        contrib = x.data * model._coef[column, x.indices]
        names = self._feature_names()
        lo, hi = model.config.char_ngrams
        owners_of: dict[str, list[int]] = defaultdict(list)
        for i, w in enumerate(lowered):  # char_wb: n-grams of each word padded by a space
            padded = f" {w} "
            for n in range(lo, hi + 1):
                for start in range(len(padded) - n + 1):
                    owners_of["c" + padded[start : start + n]].append(i)
        weight = np.zeros(len(words))
        for feature, value in zip(x.indices, contrib):
            part, gram = names[int(feature)]
            if part == "word":
                grams = gram.split(" ")
                owners = [
                    tokens[j + k][1]
                    for j in range(len(tokens) - len(grams) + 1)
                    if [t for t, _ in tokens[j : j + len(grams)]] == grams
                    for k in range(len(grams))
                ]
            else:
                owners = owners_of.get("c" + gram, [])
            for owner in owners:
                weight[owner] += value / len(owners)
        return _ranked(words, weight)

    def occlusion_words(
        self,
        inputs: Sequence[ModelInput],
        columns: Sequence[int],
        max_words: int | None = None,
    ) -> list[list[WordWeight]]:
        """Per input, each word's drop in the predicted column's probability when left out
        (all variants of all inputs scored in one batch). `max_words` bounds the cost (one
        model call per word): only the first that many words are left out in turn and
        listed; the model still reads the whole text in every variant."""
        variants: list[ModelInput] = []
        spans = []
        for item in inputs:
            text = item.text if isinstance(item, Item) else item
            words = text.split()
            start = len(variants)
            variants.append(item)
            shown = words if max_words is None else words[:max_words]
            for i in range(len(shown)):
                cut = " ".join(words[:i] + words[i + 1 :])
                variants.append(Item(cut, item.image) if isinstance(item, Item) else cut)
            spans.append((start, shown))
        proba = self.model.predict_proba(variants)
        out = []
        for (start, words), column in zip(spans, columns):
            base = proba[start, column]
            drops = base - proba[start + 1 : start + 1 + len(words), column]
            out.append(_ranked(words, drops))
        return out

    # -- photos ----------------------------------------------------------------------------
    def image_heatmap(self, item: Item, column: int) -> list[list[float]] | None:
        """Drop in the predicted probability with each grid cell of the photo greyed out."""
        if not item.image or not getattr(self.model, "uses_images", False):
            return None
        import tempfile

        from PIL import Image

        with Image.open(item.image) as img:
            base = img.convert("RGB")
        w, h = base.size
        with tempfile.TemporaryDirectory(prefix="taxonomist-occlude-") as tmp:
            cells = []
            for r in range(self.grid):
                for c in range(self.grid):
                    patched = base.copy()
                    box = (
                        c * w // self.grid, r * h // self.grid,
                        (c + 1) * w // self.grid, (r + 1) * h // self.grid,
                    )  # fmt: skip
                    patched.paste((128, 128, 128), box)
                    path = Path(tmp) / f"{r}-{c}.png"
                    patched.save(path)
                    cells.append(Item(item.text, str(path)))
            proba = self.model.predict_proba([item, *cells])
        drops = proba[0, column] - proba[1:, column]
        return [
            [round(float(d), 6) for d in drops[r * self.grid : (r + 1) * self.grid]]
            for r in range(self.grid)
        ]

    # -- all together ----------------------------------------------------------------------
    def explain(
        self,
        inputs: Sequence[ModelInput],
        ids: Sequence[str] | None = None,
        *,
        neighbours: int = 3,
        photos: bool = True,
        max_words: int | None = None,
    ) -> list[Explanation]:
        """One `Explanation` of the top prediction per input (`max_words`: see
        `occlusion_words`; exact linear contributions are cheap and always cover every
        word)."""
        model = self.model
        ids = list(ids) if ids is not None else [str(i + 1) for i in range(len(inputs))]
        if not len(inputs):
            return []
        proba = model.predict_proba(inputs)
        columns = proba.argmax(1)
        texts = [x.text if isinstance(x, Item) else x for x in inputs]
        if self.exact:
            x = model._tfidf.transform(texts).tocsr()
            words = [
                self.linear_words(t, int(c), x[n]) for n, (t, c) in enumerate(zip(texts, columns))
            ]
        else:
            words = self.occlusion_words(inputs, [int(c) for c in columns], max_words)
        near = self.index.query(texts, neighbours) if self.index and neighbours else None
        out = []
        for n, (item, column) in enumerate(zip(inputs, columns)):
            cat = model.taxonomy.get(model.labels[int(column)])
            exp = Explanation(
                id=ids[n],
                category=cat.id,
                path=cat.path_str,
                probability=float(proba[n, column]),
                method="linear-exact" if self.exact else "occlusion",
                words=words[n],
            )
            if near is not None:
                exp.neighbours = [
                    {
                        "id": nb.id,
                        "title": nb.title,
                        "category": _path(model.taxonomy, nb.label),
                        "category_id": nb.label,
                        "similarity": round(nb.similarity, 4),
                    }
                    for nb in near[n]
                ]
            if photos and isinstance(item, Item):
                exp.image_heatmap = self.image_heatmap(item, int(column))
            out.append(exp)
        return out


def explain(
    model_dir: str | Path, inputs: Sequence[ModelInput], ids: Sequence[str] | None = None, **kw
) -> list[Explanation]:
    """Load the model in `model_dir` and explain its predictions for `inputs`."""
    from ..models import load_model

    try:
        model = load_model(model_dir)
    except FileNotFoundError as exc:  # pragma: no cover - load_model says it better
        raise ModelError(str(exc)) from None
    return Explainer(model, model_dir).explain(inputs, ids, **kw)


def _ranked(words: list[str], weight: np.ndarray) -> list[WordWeight]:
    order = sorted(range(len(words)), key=lambda i: -weight[i])
    return [WordWeight(words[i], i, float(weight[i])) for i in order]


def _path(taxonomy, category_id: str) -> str:
    return taxonomy.get(category_id).path_str if category_id in taxonomy else category_id


def heatmap_png(heatmap: list[list[float]], image: str, out: str | Path) -> Path:
    """The photo with the heat map laid over it (red: the regions the prediction needed)."""
    from PIL import Image

    grid = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    scale = grid.max() or 1.0
    with Image.open(image) as img:
        base = img.convert("RGB")
    mask = Image.fromarray((grid / scale * 160).astype(np.uint8)).resize(base.size)
    red = Image.new("RGB", base.size, (220, 30, 30))
    Image.composite(red, base, mask).save(out)
    return Path(out)


def explanation_path(output: str | Path) -> Path:
    """Where `classify --explain` writes explanations: beside the predictions."""
    output = Path(output)
    return output.with_name(output.stem + ".explanations.jsonl")


def explain_file(
    input_path: str | Path,
    model_dir: str | Path,
    out: str | Path,
    *,
    columns=None,
    neighbours: int = 3,
    batch_size: int = 256,
) -> int:
    """Explain a trained model's prediction for every good row of `input_path`, one JSON
    object a line in `out`; photo heat maps also as PNGs in `<out stem>.heatmaps/`.
    Returns the number of rows explained."""
    import json

    from ..data import ColumnSpec, ReadReport, read_products
    from ..models import load_model
    from ..persistence import atomic_write_text
    from ..service import model_inputs

    columns = columns or ColumnSpec()
    out = Path(out)
    explainer = Explainer(load_model(model_dir), model_dir)
    lines: list[str] = []
    heatmaps = out.with_name(out.stem + ".heatmaps")
    for batch in read_products(
        input_path, columns, batch_size=batch_size, report=ReadReport(str(input_path))
    ):
        inputs = model_inputs(batch, columns)
        for exp, item in zip(
            explainer.explain(inputs, [p.id for p in batch], neighbours=neighbours), inputs
        ):
            record = exp.as_dict()
            if exp.image_heatmap is not None and isinstance(item, Item) and item.image:
                heatmaps.mkdir(exist_ok=True)
                safe = re.sub(r"[^\w.-]+", "_", exp.id)[:80] or "row"
                record["image_heatmap_png"] = str(
                    heatmap_png(exp.image_heatmap, item.image, heatmaps / f"{safe}.png")
                )
            lines.append(json.dumps(record, ensure_ascii=False))
    atomic_write_text(out, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)
