"""Output paths checked before any work: a job that would fail at its last step, or overwrite
what the user owns, is refused before a single row is read or encoded.

Every job (classify, evaluate, train, tune, align, demo) calls these through the service
layer; the writers call them again, so library users get the same protection.

Rules:
- A file output needs a supported extension and an existing, writable folder (a typo in a
  folder name is reported, not silently created), and must not be a directory.
- No output may be one of the job's inputs (same file through any path: symlinks and hard
  links included), and no two outputs of one job may be the same file.
- A model directory may be new (missing parent folders are created), empty, or a model
  directory written before (it is replaced). Any other existing folder is refused: replacing
  it would delete files the user owns. An input inside it is refused for the same reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import DataError

PathLike = str | os.PathLike[str]

REPORT_FORMATS = {".html": "html", ".htm": "html"}
JSON_FORMATS = {".json": "json"}
MODEL_MARKER = "manifest.json"


def _real(path: Path) -> Path:
    # resolve() follows every symlink, including one at the last component; for a path that
    # does not exist yet it resolves what does exist and keeps the rest
    return path.expanduser().resolve(strict=False)


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when `a` and `b` name one file: same resolved path, or (when both exist) the same
    inode, which also catches hard links."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return _real(a) == _real(b)


def _writable_folder(folder: Path, target: Path) -> None:
    if not folder.exists():
        raise DataError(
            "output folder does not exist; create it first (mkdir -p)", file=folder or Path(".")
        )
    if not folder.is_dir():
        raise DataError("is not a folder, cannot write into it", file=folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"no permission to write '{target.name}' in this folder", file=folder)


def check_output_file(
    path: PathLike,
    formats: Mapping[str, str] | Iterable[str],
    *,
    inputs: Iterable[PathLike | None] = (),
    what: str = "output",
) -> Path:
    """Check that `path` can be written as a `what` file, and that doing so harms no input.

    Args:
        path: where the file will be written.
        formats: the accepted extensions (lower case, with the dot), or a map from them.
        inputs: files the job reads; writing over any of them is refused.
        what: the output's role in messages ("predictions", "report", "metrics JSON").

    Returns:
        `path` as a Path.

    Raises:
        DataError: unsupported extension, missing or read-only folder, a directory in the
            way, or the output is one of the inputs.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"is a folder; give a {what} file name inside it", file=path)
    accepted = sorted(formats)
    if path.suffix.lower() not in accepted:
        raise DataError(
            f"unsupported {what} type '{path.suffix or '(none)'}'; use one of "
            f"{', '.join(accepted)}",
            file=path,
        )
    _writable_folder(path.parent, path)
    for source in inputs:
        if source is not None and same_file(path, source):
            raise DataError(
                f"the {what} file is the input file {source}; writing it would destroy the "
                "input. Choose another output name",
                file=path,
            )
    return path


def check_model_dir(
    path: PathLike, *, inputs: Iterable[PathLike | None] = (), what: str = "model directory"
) -> Path:
    """Check that a model directory can be written at `path` without destroying user files.

    Args:
        path: the directory to (re)write.
        inputs: files the job reads; none may be inside `path`.
        what: the output's role in messages.

    Raises:
        DataError: `path` is a file, a non-empty folder that is not a model directory, holds
            an input, or no folder on the way can be written.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise DataError(f"exists and is not a folder; the {what} must be a folder", file=path)
        if not (path / MODEL_MARKER).exists() and any(path.iterdir()):
            raise DataError(
                f"is a folder with other files in it, not a Taxonomist {what}; writing the "
                "model would replace the whole folder. Choose a new or empty folder",
                file=path,
            )
    real = _real(path)
    for source in inputs:
        if source is None:
            continue
        src = _real(Path(source))
        if src == real or real in src.parents:
            raise DataError(
                f"the input {source} is inside the {what}; replacing the folder would delete "
                "it. Choose another output folder",
                file=path,
            )
    # the directory is swapped in next to where it goes: the nearest existing ancestor must
    # be a writable folder (missing ones are created)
    ancestor = real.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DataError("is not a folder, cannot create the model folder in it", file=ancestor)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(f"no permission to create '{path.name}' here", file=ancestor)
    return path


def check_distinct(outputs: Iterable[tuple[str, PathLike | None]]) -> None:
    """Refuse two outputs of one job that name the same file, e.g. `--json` and `--report`
    pointing at one path (the second would overwrite the first)."""
    seen: list[tuple[str, Path]] = []
    for what, path in outputs:
        if path is None:
            continue
        for other_what, other in seen:
            if same_file(path, other):
                raise DataError(
                    f"the {what} and the {other_what} would be the same file; give each its own",
                    file=path,
                )
        seen.append((what, Path(path)))


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc):
    setting and restoring it would race with other threads creating files."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(root: PathLike) -> None:
    """Give `root` and everything under it the modes a plain `open`/`mkdir` would have:
    0666/0777 less the umask. Temp-file helpers create 0600/0700, which would lock a
    shared model folder to its writer."""
    mask = current_umask()
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    root = Path(root)
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, dir_mode)
        for name in files:
            target = Path(folder) / name
            if not target.is_symlink():
                os.chmod(target, file_mode)
