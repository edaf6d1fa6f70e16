"""Model directories: `manifest.json` + `taxonomy.json` + `*.safetensors`, written atomically.

Nothing here unpickles: weights are safetensors, everything else is JSON, so a model directory
from a stranger can be opened safely. An unknown `format_version` is refused.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from .data.paths import current_umask
from .errors import ModelError
from .taxonomy import Taxonomy

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TAXONOMY = "taxonomy.json"

T = TypeVar("T")


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
        # mkstemp creates 0600; outputs are meant to be shared like any file the user makes
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv_rows(path: Path, header: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """A CSV file of `header` and `rows` (its folder made if need be), written with
    `atomic_write_text`, so a reader never sees half of it."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buffer.getvalue())


def save_model_dir(
    path: str | Path,
    *,
    manifest: dict[str, Any],
    taxonomy: Taxonomy | None,
    write_files: Callable[[Path], None],
) -> Path:
    """Write a model directory atomically: build it in a temp dir, then swap it into place.

    A reader of `path` sees the old model or the new one, never a mix and never nothing: on
    Linux the two directories are exchanged in one `renameat2(RENAME_EXCHANGE)` call. Where
    that is unavailable (other systems, some network filesystems) the old directory is moved
    aside and the new one moved in by two renames, microseconds apart; a reader in that window
    finds no directory, and `load_model` retries. Every manifest carries a fresh `save_id`,
    which `load_model` checks before and after loading, so a reader whose files changed under
    it loads again. Temp and old-directory names are unique per call, so two writers (threads
    or processes) never collide on them; the last to finish wins. Modes follow the umask.

    Args:
        path: the model directory (replaced if it is one; an empty folder is used; any other
            existing folder is refused, see `data.paths.check_model_dir`).
        manifest: kind, config, labels, metrics... (format version, environment and time added).
        taxonomy: saved as taxonomy.json (None for models not tied to one taxonomy).
        write_files: writes the weights (safetensors) and extra JSON into the temp dir.
    """
    from .data.paths import apply_umask, check_model_dir

    path = Path(path)
    check_model_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
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
            # unique per save (the version repeats when identical content is re-saved within
            # a second): load_consistent compares it before and after loading
            "save_id": uuid.uuid4().hex,
            "environment": environment(),
            **manifest,
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, ensure_ascii=False), "utf-8")
        apply_umask(tmp)
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directory entries (Linux >= 3.15); False where not supported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl without it
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # filesystem or kernel without RENAME_EXCHANGE
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, path: Path) -> None:
    """Put directory `new` at `path`, removing what was there."""
    try:
        os.rename(new, path)  # nothing there (or an empty folder): one atomic rename
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if _exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old model
        return
    # two renames: the old directory gets a unique name so that concurrent writers and a
    # leftover from a crash never collide on it
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex}")
    os.rename(path, old)
    os.rename(new, path)
    shutil.rmtree(old, ignore_errors=True)


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
    try:
        # no exists() check first: a save swapping the directory in between would turn a
        # clean "not found" (which `load_consistent` retries) into a bare FileNotFoundError
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} is not a Taxonomist model directory (no {MANIFEST})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{file}: unreadable manifest ({exc})") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{file}: model format_version {version!r} is not supported by this Taxonomist "
            f"(reads {FORMAT_VERSION}); use the Taxonomist version that trained it, or retrain"
        )
    return manifest


def load_consistent(path: str | Path, load: Callable[[dict[str, Any]], T], attempts: int = 5) -> T:
    """Run `load(manifest)` on a model directory and return what it built, making sure the
    directory was not replaced meanwhile (the `save_id` read before and after must agree);
    if it was, load again. So a reader never keeps a mix of two saves' files.
    """
    path = Path(path)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            manifest = read_manifest(path)
        except ModelError:
            if last or not path.parent.exists():
                raise
            time.sleep(0.02)  # a fallback swap's two renames may be in flight
            continue
        try:
            built = load(manifest)
        except Exception:
            if last or _save_id(path) == manifest.get("save_id"):
                raise
            continue  # files changed under us: what failed was a mix of two saves
        if _save_id(path) == manifest.get("save_id"):
            return built
    raise ModelError(f"{path}: the model directory kept changing while it was being loaded")


def _save_id(path: Path) -> str | None:
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("save_id")
    except (OSError, ValueError):
        return "(unreadable)"


def read_taxonomy(path: str | Path) -> Taxonomy:
    file = Path(path) / TAXONOMY
    if not file.exists():
        raise ModelError(f"{path}: missing {TAXONOMY}")
    return Taxonomy.from_dict(json.loads(file.read_text(encoding="utf-8")))
