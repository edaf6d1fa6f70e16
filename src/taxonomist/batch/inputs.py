"""The input of a batch job: one file, a folder of files, or a glob; checked up front."""

from __future__ import annotations

import glob
from pathlib import Path

from ..data.readers import detect_format
from ..errors import DataError


def input_files(spec: str | Path) -> list[Path]:
    """The data files `spec` names, sorted, each checked to exist, be readable and have a
    supported type; all of one format.

    Raises:
        DataError: nothing matches, a file cannot be opened, a type is unsupported, or the
            files mix formats.
    """
    text = str(spec)
    path = Path(text)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    elif path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
        )
    elif path.exists():
        files = [path]
    else:
        raise DataError("file not found", file=path)
    if not files:
        raise DataError("no data files there", file=path)
    formats = set()
    for file in files:
        formats.add(detect_format(file))
        try:
            with open(file, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise DataError(f"unreadable ({exc.strerror or exc})", file=file) from None
    if len(formats) > 1:
        raise DataError(
            f"the input mixes formats ({', '.join(sorted(formats))}); give one kind of file",
            file=path,
        )
    return files
