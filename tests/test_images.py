"""Tests for taxonomist.images: checking, opening, preprocessing and locating product images.

Every image is generated in tmp_path; nothing here imports torch or a model.
"""

from __future__ import annotations

import hashlib
import http.server
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taxonomist import images
from taxonomist.errors import ConfigError, DataError
from taxonomist.images import (
    MEAN,
    STD,
    ImageProblem,
    augment,
    check_image,
    file_digest,
    open_rgb,
    preprocess,
    resolve_image_ref,
)

WHITE_NORM = (1.0 - MEAN) / STD


def _noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    bands = len(mode)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], bands), np.uint8)
    return Image.fromarray(pixels if bands > 1 else pixels[..., 0])


def _save(image: Image.Image, path: Path, fmt: str | None = None, **kwargs: object) -> Path:
    image.save(path, fmt, **kwargs)
    return path


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that is only a signature, an IHDR claiming width x height, and IEND: the
    header says huge, but the file is tiny and has no pixels to allocate."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


# -- check_image ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt"), [("a.jpg", "JPEG"), ("a.png", "PNG"), ("a.webp", "WEBP")])
def test_good_images_pass(tmp_path: Path, name: str, fmt: str) -> None:
    path = _save(_noise((40, 30)), tmp_path / name, fmt)
    assert check_image(path) is None


def test_rgba_png_passes(tmp_path: Path) -> None:
    path = _save(_noise((20, 20), "RGBA"), tmp_path / "a.png")
    assert check_image(path) is None


def test_multi_picture_jpeg_counts_as_jpeg(tmp_path: Path) -> None:
    # phone cameras write MPO; PIL names the format "MPO" though the file is a JPEG
    path = _save(_noise((16, 16)), tmp_path / "a.jpg", "MPO", save_all=True,
                 append_images=[_noise((16, 16), seed=1)])  # fmt: skip
    with Image.open(path) as image:
        assert image.format == "MPO"
    assert check_image(path) is None


def test_missing_file(tmp_path: Path) -> None:
    assert check_image(tmp_path / "nope.jpg") == "file not found"


def test_directory(tmp_path: Path) -> None:
    assert check_image(tmp_path) == "is a directory, expected an image file"


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert check_image(path) == "empty file (0 bytes)"


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture, just some notes\n")
    assert check_image(path) == "not an image (cannot identify the format)"


@pytest.mark.parametrize(("name", "fmt"), [("a.gif", "GIF"), ("a.bmp", "BMP")])
def test_unsupported_format_is_named(tmp_path: Path, name: str, fmt: str) -> None:
    path = _save(_noise((10, 10)), tmp_path / name, fmt)
    reason = check_image(path)
    assert reason == f"unsupported image format {fmt}; use one of JPEG, PNG, WEBP"


def test_truncated_jpeg(tmp_path: Path) -> None:
    good = _save(_noise((64, 64)), tmp_path / "good.jpg", "JPEG")
    data = good.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    reason = check_image(cut)
    assert reason is not None and reason.startswith("corrupt or truncated image data")
    assert "truncated" in reason


def test_corrupt_png_data(tmp_path: Path) -> None:
    data = bytearray(_save(_noise((32, 32)), tmp_path / "good.png").read_bytes())
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = b"\x00" * 40  # scramble the compressed pixels
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    reason = check_image(bad)
    assert reason is not None and reason.startswith("corrupt or truncated image data")


def test_oversized_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(_noise((64, 64)), tmp_path / "a.png")
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 1000)
    reason = check_image(path)
    assert reason is not None
    assert reason.startswith("file is ") and "over the 1000 bytes limit" in reason
    size = path.stat().st_size
    assert f"{size / 1024:.1f} KiB" in reason


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (13_000, 10),  # one side over MAX_IMAGE_SIDE
        (7_000, 7_000),  # 49 M pixels: over our limit, under PIL's warning threshold
    ],
)
def test_huge_dimensions_rejected_from_the_header(tmp_path: Path, width: int, height: int) -> None:
    path = _png_header(tmp_path / "huge.png", width, height)
    assert path.stat().st_size < 100
    assert check_image(path) == (
        f"image is {width}x{height} pixels; the limit is 40,000,000 pixels and 12,000 px per side"
    )


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (10_000, 10_000),  # 100 M pixels: PIL warns (DecompressionBombWarning) inside open
        (50_000, 50_000),  # 2.5 G pixels: PIL raises DecompressionBombError inside open
    ],
)
def test_pil_bomb_check_is_reported_not_raised_or_warned(
    tmp_path: Path, width: int, height: int
) -> None:
    path = _png_header(tmp_path / "bomb.png", width, height)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reason = check_image(path)
    assert caught == []
    assert reason is not None and reason.startswith("image dimensions too large")


def test_check_image_never_raises_on_odd_paths(tmp_path: Path) -> None:
    assert check_image(tmp_path / ("x" * 5000)) is not None  # name too long for the OS
    assert check_image(Path("bad\0name.jpg")) is not None


# -- open_rgb -------------------------------------------------------------------------------


def test_open_rgb_flattens_transparency_onto_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black
    image = open_rgb(_save(rgba, tmp_path / "a.png"))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((2, 2)) == (255, 0, 0)


def test_open_rgb_palette_with_transparency(tmp_path: Path) -> None:
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    path = _save(palette, tmp_path / "p.png", transparency=0)
    image = open_rgb(path)
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((3, 3)) == (0, 0, 255)


def test_open_rgb_greyscale_and_16_bit(tmp_path: Path) -> None:
    grey = open_rgb(_save(Image.new("L", (3, 3), 100), tmp_path / "l.png"))
    assert grey.mode == "RGB" and grey.getpixel((1, 1)) == (100, 100, 100)
    deep = Image.fromarray(np.full((3, 3), 257 * 100, dtype=np.uint16))
    image = open_rgb(_save(deep, tmp_path / "i16.png"))
    assert image.getpixel((1, 1)) == (100, 100, 100)  # not clipped to white


def test_open_rgb_applies_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _save(Image.new("RGB", (40, 20)), tmp_path / "phone.jpg", "JPEG", exif=exif.tobytes())
    assert open_rgb(path).size == (20, 40)


def test_open_rgb_raises_image_problem(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageProblem) as info:
        open_rgb(path)
    assert isinstance(info.value, DataError)
    assert info.value.reason == "empty file (0 bytes)"
    assert str(info.value) == f"{path}: empty file (0 bytes)"


# -- preprocess and augment -----------------------------------------------------------------


def _stripes() -> Image.Image:
    """100 wide x 300 tall: black top third, red middle, black bottom."""
    pixels = np.zeros((300, 100, 3), np.uint8)
    pixels[100:200, :, 0] = 255
    return Image.fromarray(pixels)


def _norm(rgb: tuple[int, int, int]) -> np.ndarray:
    return (np.array(rgb, np.float32) / 255 - MEAN) / STD


def test_preprocess_pad_keeps_the_whole_product_on_white() -> None:
    array = preprocess(_stripes(), size=224, fit="pad")
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    np.testing.assert_allclose(array[:, 0, 0], WHITE_NORM, atol=1e-5)  # side padding
    np.testing.assert_allclose(array[:, 112, 112], _norm((255, 0, 0)), atol=0.05)
    np.testing.assert_allclose(array[:, 10, 112], _norm((0, 0, 0)), atol=0.05)  # top kept


def test_preprocess_crop_fills_the_square() -> None:
    array = preprocess(_stripes(), size=224, fit="crop")
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    # the centre crop of the tall picture is all red: top and bottom were cut
    np.testing.assert_allclose(array[:, 0, 0], _norm((255, 0, 0)), atol=0.05)
    np.testing.assert_allclose(array[:, 223, 223], _norm((255, 0, 0)), atol=0.05)


def test_preprocess_normalisation_and_other_sizes() -> None:
    array = preprocess(Image.new("RGB", (50, 80), (255, 255, 255)), size=32)
    assert array.shape == (3, 32, 32)
    np.testing.assert_allclose(array, WHITE_NORM[:, None, None] * np.ones((3, 32, 32)), atol=1e-5)
    assert preprocess(Image.new("RGBA", (5, 5)), size=16).shape == (3, 16, 16)


def test_preprocess_unknown_fit() -> None:
    with pytest.raises(ConfigError, match="unknown image fit 'stretch'; use one of pad, crop"):
        preprocess(Image.new("RGB", (8, 8)), fit="stretch")


def test_augment_is_deterministic_per_seed() -> None:
    image = _noise((120, 80))
    first = augment(image, np.random.default_rng(7), size=64)
    again = augment(image, np.random.default_rng(7), size=64)
    other = augment(image, np.random.default_rng(8), size=64)
    assert first.shape == (3, 64, 64) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.isfinite(first).all()


def test_augment_views_vary_within_one_rng() -> None:
    rng = np.random.default_rng(0)
    image = _noise((64, 64))
    views = [augment(image, rng, size=32) for _ in range(4)]
    assert all(not np.array_equal(views[0], v) for v in views[1:])


def test_random_crop_box_stays_inside() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        left, top, right, bottom = images._random_crop_box(100, rng)
        assert 0 <= left < right <= 100 and 0 <= top < bottom <= 100
        area = (right - left) * (bottom - top) / 100**2
        assert 0.6 - 1e-9 <= area <= 1.0 + 1e-9
        assert 3 / 4 - 1e-9 <= (right - left) / (bottom - top) <= 4 / 3 + 1e-9


# -- resolve_image_ref ----------------------------------------------------------------------


def test_empty_ref_is_no_image(tmp_path: Path) -> None:
    assert resolve_image_ref("", tmp_path) == (None, None)
    assert resolve_image_ref("   ", tmp_path) == (None, None)


def test_relative_and_absolute_paths(tmp_path: Path) -> None:
    assert resolve_image_ref("pics/a.jpg", tmp_path) == (tmp_path / "pics" / "a.jpg", None)
    assert resolve_image_ref("../a.jpg", tmp_path / "data") == (tmp_path / "a.jpg", None)
    elsewhere = tmp_path / "other" / "b.png"
    assert resolve_image_ref(str(elsewhere), tmp_path / "data") == (elsewhere, None)


def test_file_uri(tmp_path: Path) -> None:
    target = tmp_path / "my pics" / "a.jpg"
    assert resolve_image_ref(target.as_uri(), Path("/elsewhere")) == (target, None)
    path, reason = resolve_image_ref("file://server/share/a.jpg", tmp_path)
    assert path is None and reason is not None and "host" in reason


def test_remote_url_needs_allow_download(tmp_path: Path) -> None:
    assert resolve_image_ref("https://example.com/a.jpg", tmp_path) == (
        None,
        "remote image URL not fetched; pass --allow-download to fetch it",
    )


def test_unknown_scheme(tmp_path: Path) -> None:
    path, reason = resolve_image_ref("s3://bucket/a.jpg", tmp_path)
    assert path is None
    assert reason == (
        "unsupported image reference scheme 's3:'; use a local path, file:// or http(s)://"
    )


# -- downloads from a local server ----------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, list]]:
    """A local HTTP server over tmp_path/site: (base URL, site folder, requested paths)."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    site = tmp_path / "site"
    site.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", site, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_download_and_reuse(tmp_path: Path, server: tuple[str, Path, list]) -> None:
    base, site, requests = server
    _save(_noise((20, 20)), site / "shoe.jpg", "JPEG")
    url = f"{base}/shoe.jpg"
    downloads = tmp_path / "downloads"
    path, reason = resolve_image_ref(url, tmp_path, allow_download=True, download_dir=downloads)
    assert reason is None and path is not None
    assert path == downloads / (hashlib.sha1(url.encode()).hexdigest() + ".jpg")
    assert path.read_bytes() == (site / "shoe.jpg").read_bytes()
    assert check_image(path) is None
    assert list(downloads.iterdir()) == [path]  # no temporary file left behind
    again = resolve_image_ref(url, tmp_path, allow_download=True, download_dir=downloads)
    assert again == (path, None)
    assert requests == ["/shoe.jpg"]  # the second call reused the file


def test_download_goes_to_the_cache_by_default(
    tmp_path: Path, server: tuple[str, Path, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, site, _ = server
    monkeypatch.setenv("TAXONOMIST_CACHE_DIR", str(tmp_path / "cache"))
    (site / "a.png").write_bytes(b"x")
    path, reason = resolve_image_ref(f"{base}/a.png", tmp_path, allow_download=True)
    assert reason is None and path is not None
    assert path.parent == tmp_path / "cache" / "images"


def test_download_http_error(tmp_path: Path, server: tuple[str, Path, list]) -> None:
    base, _, _ = server
    path, reason = resolve_image_ref(
        f"{base}/missing.jpg", tmp_path, allow_download=True, download_dir=tmp_path / "d"
    )
    assert path is None
    assert reason == "download failed: HTTP 404 File not found"
    assert list((tmp_path / "d").iterdir()) == []


def test_download_too_large(
    tmp_path: Path, server: tuple[str, Path, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, site, _ = server
    (site / "big.jpg").write_bytes(b"\xff" * 5000)
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 1000)
    path, reason = resolve_image_ref(
        f"{base}/big.jpg", tmp_path, allow_download=True, download_dir=tmp_path / "d"
    )
    assert path is None
    assert reason == "remote image is larger than the 1000 bytes limit (4.9 KiB)"
    assert list((tmp_path / "d").iterdir()) == []


def test_download_connection_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path, reason = resolve_image_ref(
        f"http://127.0.0.1:{port}/a.jpg", tmp_path, allow_download=True, download_dir=tmp_path
    )
    assert path is None and reason is not None and reason.startswith("download failed")


# -- file_digest ----------------------------------------------------------------------------


def test_file_digest_is_sha1_of_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello")
    assert file_digest(path) == hashlib.sha1(b"hello").hexdigest()


def test_module_imports_no_torch() -> None:
    import subprocess

    code = "import sys, taxonomist.images; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
