"""Model directories: `manifest.json` + `taxonomy.json` + `*.safetensors`, written atomically.

Nothing here unpickles: weights are safetensors, everything else is JSON, so a model directory
from a stranger can be opened safely. An unknown `format_version` is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ModelError
from .taxonomy import Taxonomy

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TAXONOMY = "taxonomy.json"


def package_version(package: str) -> str | None:
    """The installed version of `package` from its metadata (no import), or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, str | None]:
    return {
        "taxonomist": package_version("taxonomist"),
        "python": platform.python_version(),
        "numpy": package_version("numpy"),
        "scikit-learn": package_version("scikit-learn"),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "sentence-transformers": package_version("sentence-transformers"),
        "peft": package_version("peft"),
    }


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file so readers never see half of it: a temp file in the same directory
    (so `os.replace` is a rename on one filesystem), then swapped into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model_dir(
    path: str | Path,
    *,
    manifest: dict[str, Any],
    taxonomy: Taxonomy | None,
    write_files: Callable[[Path], None],
) -> Path:
    """Write a model directory atomically: build it in a temp dir, then swap it into place.

    Args:
        path: the model directory (replaced if it exists).
        manifest: kind, config, labels, metrics... (format version, environment and time added).
        taxonomy: saved as taxonomy.json (None for models not tied to one taxonomy).
        write_files: writes the weights (safetensors) and extra JSON into the temp dir.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        write_files(tmp)
        if taxonomy is not None:
            (tmp / TAXONOMY).write_text(taxonomy.to_json(), encoding="utf-8")
        created = datetime.now(timezone.utc)
        digest = content_digest(tmp)
        full = {
            "format_version": FORMAT_VERSION,
            "created_at": created.isoformat(timespec="seconds"),
            # what a prediction names as its model: when it was made and what it holds
            "version": f"{created.strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}",
            "digest": digest,
            "environment": environment(),
            **manifest,
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, ensure_ascii=False), "utf-8")
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def content_digest(directory: str | Path) -> str:
    """sha256 over every file of a model directory but its manifest (names and bytes), so
    two directories with the same weights, vocabularies and taxonomy share a digest."""
    root = Path(directory)
    h = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        h.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def model_identity(path: str | Path) -> tuple[str, str]:
    """(version, digest) of a model directory; computed for models saved before manifests
    recorded them."""
    manifest = read_manifest(path)
    digest = manifest.get("digest") or content_digest(path)
    version = manifest.get("version") or f"{manifest.get('created_at', 'unknown')}-{digest[:8]}"
    return str(version), str(digest)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a model directory, checked for a known format version."""
    path = Path(path)
    file = path / MANIFEST
    if not path.is_dir():
        raise ModelError(f"model directory not found: {path}")
    if not file.exists():
        raise ModelError(f"{path} is not a Taxonomist model directory (no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{file}: unreadable manifest ({exc})") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{file}: model format_version {version!r} is not supported by this Taxonomist "
            f"(reads {FORMAT_VERSION}); use the Taxonomist version that trained it, or retrain"
        )
    return manifest


def read_taxonomy(path: str | Path) -> Taxonomy:
    file = Path(path) / TAXONOMY
    if not file.exists():
        raise ModelError(f"{path}: missing {TAXONOMY}")
    return Taxonomy.from_dict(json.loads(file.read_text(encoding="utf-8")))
