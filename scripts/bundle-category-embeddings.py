"""Write the category embeddings Taxonomist ships for its bundled taxonomies.

For each (taxonomy, encoder, language) below, embeds the category texts exactly as zero-shot
does (ZeroShotClassifier.category_texts with the default templates) and writes a float16
bundle keyed by the encoder's weights digest into src/taxonomist/resources/embeddings/.
Re-run it after changing the default templates or a bundled taxonomy; zero-shot ignores a
bundle that no longer matches (it then embeds the categories itself, minutes on 2 cores).

Usage: PYTHONPATH=src python scripts/bundle-category-embeddings.py [--only shopify-use-zh]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from taxonomist.encoders import EmbeddingCache, EncoderSet, Role, build_encoder, normalize
from taxonomist.encoders.bundled import bundle_dir, write_bundle
from taxonomist.encoders.cache import CachedEncoder
from taxonomist.encoders.progress import encode_with_progress
from taxonomist.taxonomy_loaders import load_taxonomy
from taxonomist.zeroshot import ZeroShotClassifier, ZeroShotConfig

# What the default `auto` encoder set needs: MiniLM for English text against English names,
# USE for Chinese text against the taxonomy's Chinese names (with its English names and paths,
# the default cross-language templates); and E5's Chinese names alone, which `fewshot` starts
# from on Chinese catalogues (languages.CHINESE_FEWSHOT_ENCODER, models/fewshot.py).
BUNDLES = [
    ("shopify", "minilm", "en", ZeroShotConfig()),
    ("shopify", "use", "zh", ZeroShotConfig()),
    ("shopify", "e5", "zh", ZeroShotConfig(cross_language_templates=())),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=None, help="e.g. shopify-minilm-en")
    parser.add_argument("--out", type=Path, default=bundle_dir())
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for taxonomy_name, encoder_name, language, config in BUNDLES:
        tag = f"{taxonomy_name}-{encoder_name}-{language}"
        if args.only and args.only != tag:
            continue
        taxonomy = load_taxonomy(taxonomy_name)
        encoder = CachedEncoder(build_encoder(encoder_name), EmbeddingCache())
        clf = ZeroShotClassifier(taxonomy, EncoderSet({}, encoder), config)
        texts = clf.category_texts(language)
        per_template = [
            encode_with_progress(encoder, column, role=Role.CATEGORY, what=f"{tag} template {i}")
            for i, column in enumerate(texts, 1)
        ]
        own = normalize(np.mean(per_template, axis=0))
        version = taxonomy.version or "unversioned"
        path = write_bundle(
            args.out / f"{taxonomy_name}_{version}.{encoder_name}.{language}.safetensors",
            own,
            encoder,
            texts,
            taxonomy=f"{taxonomy.name} {version}",
            language=language,
        )
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
