"""Product images: find, validate, open and turn into normalised arrays for an image encoder.

PIL and numpy only, so reading and checking data never imports torch. Every check returns or
raises a short human reason ("empty file (0 bytes)", "not an image (cannot identify the
format)"), never a raw PIL traceback: a bad picture is a data problem, reported by row.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageEnhance, ImageOps, UnidentifiedImageError

from .errors import ConfigError, DataError

IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_SIDE = 12_000
DOWNLOAD_TIMEOUT_S = 10.0

# ImageNet statistics: what every pretrained image backbone was normalised with
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

FITS = ("pad", "crop")
WHITE = (255, 255, 255)
_CHUNK = 1 << 16
# multi-picture JPEGs (most phone and camera photos) open as "MPO": they are JPEGs
_FORMAT_ALIASES = {"MPO": "JPEG"}


class ImageProblem(DataError):
    """An image cannot be used; `reason` says why in a few words."""


# -- checking and opening -------------------------------------------------------------------


def check_image(path: str | Path) -> str | None:
    """None if `path` is a usable image, else a short reason. Never raises for a bad file.

    Decodes the whole image once, so truncated or corrupt data is caught here rather than
    in the middle of training.
    """
    try:
        image = _load(Path(path))
    except ImageProblem as exc:
        return exc.reason
    image.close()
    return None


def open_rgb(path: str | Path) -> Image.Image:
    """Open, check (same rules as `check_image`) and return an upright RGB image.

    Transparent pixels become white, since product photos on white are the norm.

    Raises:
        ImageProblem: the file is missing, not a supported image, too large or corrupt.
    """
    path = Path(path)
    image = _load(path)
    try:
        # EXIF orientation: phone photos are stored sideways with a "rotate me" tag
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - a malformed EXIF block must not abort a run
        raise ImageProblem(f"unreadable EXIF orientation ({exc})", file=path) from None
    return _to_rgb(upright if upright is not None else image)


def _load(path: Path) -> Image.Image:
    """The fully decoded image at `path`, or ImageProblem with the reason."""
    _check_file(path)
    try:
        with open(path, "rb") as handle, warnings.catch_warnings():
            # PIL's own decompression-bomb check warns (or raises) inside Image.open for
            # huge headers; turn the warning into an error so it is reported, not printed
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(handle)
            _check_header(image)
            image.load()  # decode every pixel: truncation only shows up here
            return image
    except ImageProblem as exc:
        raise ImageProblem(exc.reason, file=path) from None
    except UnidentifiedImageError:
        raise ImageProblem("not an image (cannot identify the format)", file=path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem(_too_large_reason(None), file=path) from None
    except MemoryError:
        raise ImageProblem("not enough memory to decode the image", file=path) from None
    except Exception as exc:  # noqa: BLE001 - PIL decoders raise OSError, SyntaxError,
        # ValueError, EOFError, struct.error... for bad data; all mean the same to a user
        raise ImageProblem(f"corrupt or truncated image data ({exc})", file=path) from None


def _check_file(path: Path) -> None:
    """Existence, kind and size, from one stat call, before any byte is parsed."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageProblem("file not found", file=path) from None
    except PermissionError:
        raise ImageProblem("permission denied", file=path) from None
    except (OSError, ValueError) as exc:  # e.g. a name too long, or a NUL byte in it
        raise ImageProblem(f"cannot read the file ({exc})", file=path) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageProblem("is a directory, expected an image file", file=path)
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise ImageProblem("not a regular file", file=path)
    if info.st_size == 0:
        raise ImageProblem("empty file (0 bytes)", file=path)
    if info.st_size > MAX_IMAGE_BYTES:
        raise ImageProblem(
            f"file is {_human_bytes(info.st_size)}, over the "
            f"{_human_bytes(MAX_IMAGE_BYTES)} limit for an image",
            file=path,
        )


def _check_header(image: Image.Image) -> None:
    """Format and dimensions, read from the header before any pixel is decoded."""
    fmt = _FORMAT_ALIASES.get(image.format or "", image.format)
    if fmt not in IMAGE_FORMATS:
        raise ImageProblem(
            f"unsupported image format {image.format or 'unknown'}; use one of "
            f"{', '.join(sorted(IMAGE_FORMATS))}"
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageProblem(f"invalid image dimensions {width}x{height}")
    if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_IMAGE_SIDE:
        raise ImageProblem(_too_large_reason((width, height)))


def _too_large_reason(size: tuple[int, int] | None) -> str:
    limit = f"the limit is {MAX_IMAGE_PIXELS:,} pixels and {MAX_IMAGE_SIDE:,} px per side"
    if size is None:
        return f"image dimensions too large; {limit}"
    return f"image is {size[0]}x{size[1]} pixels; {limit}"


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency flattened onto white."""
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        # 16-bit greyscale PNGs: PIL's own conversion clips at 255 and gives a white image
        scaled = np.clip(np.asarray(image, dtype=np.float32) / 257.0, 0, 255)
        image = Image.fromarray(scaled.astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or ("transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


# -- arrays for an encoder ------------------------------------------------------------------


def preprocess(image: Image.Image, size: int = 224, fit: str = "pad") -> np.ndarray:
    """A float32 (3, size, size) ImageNet-normalised array.

    fit="pad" keeps the whole product: the longer side becomes `size` and the picture is
    centred on white (portrait shots of shoes or dresses would lose their ends to a crop).
    fit="crop" is the classic ImageNet evaluation transform: shorter side to size*256/224,
    then a centred `size` square.
    """
    if fit not in FITS:
        raise ConfigError(f"unknown image fit '{fit}'; use one of {', '.join(FITS)}")
    if size < 1:
        raise ConfigError(f"image size must be at least 1, got {size}")
    image = _to_rgb(image)
    if fit == "pad":
        return _to_array(_pad_resize(image, size))
    short = round(size * 256 / 224)
    scale = short / min(image.size)
    width, height = (max(short, round(side * scale)) for side in image.size)
    resized = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    return _to_array(resized.crop((left, top, left + size, top + size)))


def augment(image: Image.Image, rng: np.random.Generator, size: int = 224) -> np.ndarray:
    """A randomly altered training view, in the same format as `preprocess`.

    Random resized crop of the white-padded square (area 60-100 %, aspect 3/4-4/3), a
    horizontal flip half of the time, and brightness/contrast/saturation jitter of +-20 %.
    Every random number comes from `rng`, drawn in a fixed order: the same seed gives the
    same view.
    """
    square = _pad_square(_to_rgb(image))
    box = _random_crop_box(square.size[0], rng)
    view = square.resize((size, size), Image.Resampling.BICUBIC, box=box)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        view = enhancer(view).enhance(float(rng.uniform(0.8, 1.2)))
    return _to_array(view)


def _random_crop_box(
    side: int, rng: np.random.Generator, tries: int = 10
) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a random crop of a side x side square.

    As torchvision's RandomResizedCrop: a drawn shape that does not fit is drawn again, and
    after `tries` misses the whole square is used.
    """
    area = side * side
    log_ratio = (np.log(3 / 4), np.log(4 / 3))
    for _ in range(tries):
        target = area * rng.uniform(0.6, 1.0)
        ratio = float(np.exp(rng.uniform(*log_ratio)))
        width, height = np.sqrt(target * ratio), np.sqrt(target / ratio)
        if width <= side and height <= side:
            left = float(rng.uniform(0, side - width))
            top = float(rng.uniform(0, side - height))
            return left, top, left + float(width), top + float(height)
    return 0.0, 0.0, float(side), float(side)


def _pad_resize(image: Image.Image, size: int) -> Image.Image:
    """Longer side to `size`, centred on a white size x size square."""
    scale = size / max(image.size)
    width, height = (max(1, min(size, round(side * scale))) for side in image.size)
    resized = image.resize((width, height), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), WHITE)
    canvas.paste(resized, ((size - width) // 2, (size - height) // 2))
    return canvas


def _pad_square(image: Image.Image) -> Image.Image:
    """The image centred on a white square of its longer side, at full resolution."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def _to_array(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    normalised = (pixels - MEAN) / STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)


# -- references: local paths, file:// and http(s):// -------------------------------------


def resolve_image_ref(
    ref: str,
    base_dir: Path,
    *,
    allow_download: bool = False,
    download_dir: Path | None = None,
) -> tuple[Path | None, str | None]:
    """Where the image named by a data cell is: (path, None), or (None, reason).

    An empty cell is (None, None): no image is not a problem. Relative paths are taken from
    `base_dir` (the data file's folder), so a data set can be moved with its pictures.
    A local path is returned whether or not it exists: `check_image` says what is wrong
    with it. Remote URLs are fetched only with `allow_download` (into `download_dir`, by
    default the taxonomist cache); a network error is a reason, never an exception.
    """
    ref = ref.strip()
    if not ref:
        return None, None
    parts = urllib.parse.urlsplit(ref)
    scheme = parts.scheme.lower()
    if not scheme or len(scheme) == 1:  # one letter: a Windows drive, "C:\\pics\\a.jpg"
        return _local(ref, base_dir), None
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None, f"file:// URL with a host ('{parts.netloc}') is not supported"
        local = urllib.request.url2pathname(urllib.parse.unquote(parts.path))
        return _local(local, base_dir), None
    if scheme in ("http", "https"):
        if not allow_download:
            return None, "remote image URL not fetched; pass --allow-download to fetch it"
        target = Path(download_dir) if download_dir is not None else default_download_dir()
        return download_image(ref, target)
    return None, (
        f"unsupported image reference scheme '{scheme}:'; use a local path, file:// or http(s)://"
    )


def _local(ref: str, base_dir: Path) -> Path:
    path = Path(ref)
    if not path.is_absolute():
        path = Path(base_dir) / path
    return Path(os.path.abspath(path))  # absolute and without "..": stable in reports


def default_download_dir() -> Path:
    """`<taxonomist cache>/images`, honouring TAXONOMIST_CACHE_DIR and XDG_CACHE_HOME."""
    from .encoders.cache import default_cache_dir  # imports no torch; lazy to stay light

    return default_cache_dir() / "images"


def download_image(url: str, directory: Path) -> tuple[Path | None, str | None]:
    """Fetch `url` into `directory` as <sha1 of url><suffix>; reuse an earlier download.

    At most MAX_IMAGE_BYTES and DOWNLOAD_TIMEOUT_S in all; the file appears only when
    complete (written aside, then renamed), so an interrupted run leaves no half image.
    """
    dest = directory / (hashlib.sha1(url.encode()).hexdigest() + _url_suffix(url))
    try:
        if dest.is_file() and dest.stat().st_size > 0:
            return dest, None
        directory.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=directory, prefix=dest.name, suffix=".part")
    except OSError as exc:
        return None, f"cannot write to the download folder {directory} ({exc})"
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            problem = _fetch(url, out)
        if problem is None:
            os.replace(temp, dest)
            return dest, None
        return None, problem
    except OSError as exc:
        return None, f"cannot save the download ({exc})"
    finally:
        temp.unlink(missing_ok=True)


def _url_suffix(url: str) -> str:
    suffix = Path(urllib.parse.urlsplit(url).path).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""


def _opener() -> urllib.request.OpenerDirector:
    # http(s) only: the default opener would also follow a redirect to ftp://
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _fetch(url: str, out: BinaryIO) -> str | None:
    """Copy `url` into the binary file `out`; None on success, else the reason."""
    deadline = time.monotonic() + DOWNLOAD_TIMEOUT_S
    request = urllib.request.Request(url, headers={"User-Agent": "taxonomist"})
    try:
        with _opener().open(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
                return _too_big_download(int(declared))
            total = 0
            while chunk := response.read(_CHUNK):
                total += len(chunk)
                if total > MAX_IMAGE_BYTES:
                    return _too_big_download(None)
                if time.monotonic() > deadline:
                    return f"download failed: took longer than {DOWNLOAD_TIMEOUT_S:g} s"
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response and its socket
        return f"download failed: HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        return f"download failed: {exc.reason}"
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad responses
        return f"download failed: {str(exc) or type(exc).__name__}"
    except ValueError as exc:  # e.g. "http://" with no host
        return f"invalid URL ({exc})"
    if total == 0:
        return "download failed: the server sent an empty response"
    return None


def _too_big_download(size: int | None) -> str:
    found = f" ({_human_bytes(size)})" if size is not None else ""
    return f"remote image is larger than the {_human_bytes(MAX_IMAGE_BYTES)} limit{found}"


def file_digest(path: str | Path) -> str:
    """sha1 of the file's bytes: keys an embedding cache by content, not by name."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
