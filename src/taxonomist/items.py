"""What a model classifies: a product's text, its image, or both.

Text-only kinds keep taking plain strings; kinds that see images take `Item`s. The base model
converts between the two, so callers may pass either and a model trained with images still
classifies text-only input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """One product as a model sees it. `image` is a validated local path, or None."""

    text: str = ""
    image: str | None = None


ModelInput = str | Item


def as_items(inputs: Sequence[ModelInput]) -> list[Item]:
    return [x if isinstance(x, Item) else Item(text=x) for x in inputs]


def as_texts(inputs: Sequence[ModelInput]) -> list[str]:
    return [x.text if isinstance(x, Item) else x for x in inputs]


def has_images(inputs: Sequence[ModelInput]) -> bool:
    return any(isinstance(x, Item) and x.image for x in inputs)


def group_key(item: ModelInput) -> str:
    """Rows with the same key are near-duplicates and must stay on one side of any split:
    the normalised title, or the photo for a row without one."""
    text = item.text if isinstance(item, Item) else item
    if not text.strip() and isinstance(item, Item):
        return f"image:{item.image}"
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\W+", " ", text).strip()
