"""The image pipeline alone (no I/O): what it refuses and what it strips."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from services.media.formats import sniff
from services.media.processing.images import (
    ImageRejected,
    Limits,
    RenderSpec,
    fit_within,
    header_size,
    render,
)
from tests.support.media import (
    TEXT_FILE,
    jpeg_bomb_behind_padding,
    jpeg_with_gps,
    metadata_of,
    png,
    png_bomb,
)

LIMITS = Limits(max_pixels=40_000_000, max_dimension=16_000)
SPEC = RenderSpec(LIMITS, thumbnail_px=320, medium_px=1080, jpeg_quality=85, webp_quality=82)


def rejection(data: bytes, kind: str, spec: RenderSpec = SPEC) -> ImageRejected:
    with pytest.raises(ImageRejected) as rejected:
        render(data, kind, spec)  # type: ignore[arg-type]
    return rejected.value


def test_every_variant_loses_exif_gps_and_comments_and_is_upright() -> None:
    variants = render(jpeg_with_gps(1600, 1200), "jpeg", SPEC)
    assert [v.name for v in variants] == ["thumbnail", "medium", "original"]
    for variant in variants:
        found = metadata_of(variant.data)
        assert found["exif"] == {}
        assert found["gps"] == {}
        assert found["comment"] is None
        assert found["icc_profile"] is None
        assert found["size"] == (variant.width, variant.height)
    assert [(v.width, v.height) for v in variants] == [(240, 320), (810, 1080), (1200, 1600)]


def test_png_text_chunks_icc_and_exif_are_dropped_and_alpha_kept() -> None:
    image = Image.new("RGBA", (400, 300), (0, 0, 255, 100))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ada, 12 Analytical Street")
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info, exif=exif, icc_profile=icc)
    for variant in render(buffer.getvalue(), "png", SPEC):
        with Image.open(io.BytesIO(variant.data)) as out:
            assert out.mode == "RGBA"
            assert out.info == {}
            assert dict(out.getexif()) == {}
            assert out.text == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["webp", "gif"])
def test_webp_and_gif_are_re_encoded(kind: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 500), (9, 9, 9)).save(buffer, kind.upper())
    variants = render(buffer.getvalue(), kind, SPEC)  # type: ignore[arg-type]
    assert [(v.width, v.height) for v in variants] == [(320, 80), (1080, 270), (2000, 500)]
    # GIF variants are still images: PNG (the first frame of an animation).
    assert {v.mime_type for v in variants} == {"image/webp" if kind == "webp" else "image/png"}


def test_a_bomb_is_refused_from_its_header() -> None:
    assert rejection(png_bomb(30_000, 30_000), "png").reason == "image-too-large"
    assert rejection(jpeg_bomb_behind_padding(), "jpeg").reason == "image-too-large"
    with pytest.raises(ImageRejected):
        header_size(png_bomb(30_000, 30_000), "png", LIMITS)


def test_the_pixel_limit_is_an_error_not_a_warning() -> None:
    """Pillow only warns between MAX_IMAGE_PIXELS and twice that; media refuses at its own
    bound, however Pillow's warning filters are set."""
    small = RenderSpec(Limits(max_pixels=10_000, max_dimension=16_000), 32, 64, 85, 82)
    assert rejection(png(101, 100), "png", small).reason == "image-too-large"
    assert render(png(100, 100), "png", small)
    thin = RenderSpec(Limits(max_pixels=10**9, max_dimension=1000), 32, 64, 85, 82)
    assert rejection(png(1001, 1), "png", thin).reason == "image-too-large"


def test_what_is_not_an_image_of_the_declared_kind_is_refused() -> None:
    assert rejection(TEXT_FILE, "jpeg").reason == "not-an-image"
    # A PNG is opened only by the JPEG plugin when it was checked as a JPEG.
    assert rejection(png(), "jpeg").reason == "not-an-image"
    photo = jpeg_with_gps(800, 600)
    assert rejection(photo[: len(photo) // 2], "jpeg").reason == "corrupt-image"


def test_magic_bytes() -> None:
    assert sniff(jpeg_with_gps(16, 16)) == "jpeg"
    assert sniff(png()) == "png"
    assert sniff(b"GIF89a....") == "gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff(TEXT_FILE) is None
    assert sniff(b"") is None


@pytest.mark.parametrize(
    ("size", "box", "fitted"),
    [
        ((4000, 3000), 1080, (1080, 810)),
        ((3000, 4000), 320, (240, 320)),
        ((100, 50), 320, (100, 50)),
        ((100_000, 1), 320, (320, 1)),
    ],
)
def test_fit_within(size: tuple[int, int], box: int, fitted: tuple[int, int]) -> None:
    assert fit_within(*size, box) == fitted
