"""Photos sent to the API: base64 data written to a private temp folder, or (only when the
server allows downloads) an http(s) URL fetched there. A caller never names a file to read.

A photo that cannot be used is a warning, like an image problem in a file: the product is
classified from its text.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from ..images import check_image, download_image


def photo_file(
    ref: str, directory: Path, stem: str, *, allow_download: bool
) -> tuple[str | None, str | None]:
    """(local path, None) for a usable photo, else (None, the reason)."""
    ref = ref.strip()
    if ref.lower().startswith(("http://", "https://")):
        if not allow_download:
            return None, "photo URL not fetched: this server does not allow downloads"
        path, problem = download_image(ref, directory)
        if problem or path is None:
            return None, f"photo: {problem}"
    else:
        data = ref.split(",", 1)[1] if ref.lower().startswith("data:") else ref
        try:
            raw = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            return None, "photo: not valid base64"
        if not raw:
            return None, "photo: empty"
        path = directory / f"{stem}.img"
        path.write_bytes(raw)
    problem = check_image(path)
    if problem:
        return None, f"photo: {problem}"
    return str(path), None
