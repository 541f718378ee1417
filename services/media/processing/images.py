"""Turning an untrusted upload into clean variants, with Pillow. Pure and blocking: the worker
runs it in a child process (processing/pool.py).

Defences, in order: the format is fixed by the file's magic bytes and only that Pillow plugin
may open it; the pixel count and sides are checked from the header, before anything is
decoded (Pillow itself only warns at MAX_IMAGE_PIXELS); truncated files are refused; EXIF
orientation is applied and then every piece of metadata (EXIF with GPS, XMP, ICC, text
chunks, comments) is dropped, colours being converted to sRGB first; every variant is a fresh
encode of the pixels. Animated GIF/WebP/PNG keep their first frame only.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from services.media.formats import EXTENSIONS, MIME_TYPES, PILLOW_FORMATS
from services.media.settings import ImageType, MediaSettings

# Output type per input type: GIF variants are still images, so PNG.
OUTPUT_KIND: dict[ImageType, ImageType] = {
    "jpeg": "jpeg",
    "png": "png",
    "webp": "webp",
    "gif": "png",
}
VARIANT_ORDER = ("thumbnail", "medium", "original")
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class ImageRejected(Exception):
    """The upload is not an image media accepts; `reason` is a stable slug."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[ImageRejected], tuple[str, str]]:
        # Raised in a child process and re-raised in the worker: it must survive pickling.
        return (type(self), (self.reason, self.detail))


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_dimension: int


@dataclass(frozen=True)
class RenderSpec:
    limits: Limits
    thumbnail_px: int
    medium_px: int
    jpeg_quality: int
    webp_quality: int

    @classmethod
    def from_settings(cls, settings: MediaSettings) -> RenderSpec:
        return cls(
            limits=Limits(max_pixels=settings.max_pixels, max_dimension=settings.max_dimension),
            thumbnail_px=settings.thumbnail_px,
            medium_px=settings.medium_px,
            jpeg_quality=settings.jpeg_quality,
            webp_quality=settings.webp_quality,
        )


@dataclass(frozen=True)
class Rendered:
    name: str
    kind: ImageType
    width: int
    height: int
    data: bytes

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.kind]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.kind]


def configure_pillow(max_pixels: int) -> None:
    """Process-wide Pillow settings: its own bomb check at our bound, and as an error."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def _too_large(width: int, height: int, limits: Limits) -> ImageRejected | None:
    if width < 1 or height < 1:
        return ImageRejected("not-an-image", "the image has no pixels")
    if width * height > limits.max_pixels:
        return ImageRejected(
            "image-too-large",
            f"{width}x{height} is more than {limits.max_pixels} pixels",
        )
    if max(width, height) > limits.max_dimension:
        return ImageRejected(
            "image-too-large", f"{width}x{height} has a side over {limits.max_dimension} pixels"
        )
    return None


def _open(data: bytes, kind: ImageType) -> ImageFile.ImageFile:
    """Open with the one plugin the magic bytes name; header only, nothing decoded yet."""
    try:
        return Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[kind]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as bomb:
        raise ImageRejected("image-too-large", str(bomb)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageRejected("not-an-image", f"not a readable {kind} image ({error})") from None


def header_size(head: bytes, kind: ImageType, limits: Limits) -> tuple[int, int] | None:
    """The dimensions the first bytes of a file declare, refusing a bomb at once; None when
    the header does not fit in `head` (the worker decides then)."""
    try:
        with _open(head, kind) as image:
            size = image.size
    except ImageRejected as rejected:
        if rejected.reason == "image-too-large":
            raise
        return None
    refusal = _too_large(*size, limits)
    if refusal is not None:
        raise refusal
    return size


def render(data: bytes, kind: ImageType, spec: RenderSpec) -> list[Rendered]:
    """Clean variants of an upload, smallest first; ImageRejected when it is not acceptable."""
    # Not closed on purpose: closing drops the decoded pixels, and a BytesIO holds no handle.
    opened = _open(data, kind)
    refusal = _too_large(*opened.size, spec.limits)
    if refusal is not None:
        raise refusal
    if opened.format != PILLOW_FORMATS[kind]:
        raise ImageRejected("not-an-image", f"not a {kind} image")
    try:
        opened.load()
        # Orientation first: it lives in the EXIF that is about to go.
        ImageOps.exif_transpose(opened, in_place=True)
        image = _clean_pixels(opened, OUTPUT_KIND[kind])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as bomb:
        raise ImageRejected("image-too-large", str(bomb)) from None
    except MemoryError:
        raise ImageRejected("image-too-large", "decoding needs more memory than allowed") from None
    except Exception as error:  # anything a hostile file makes a decoder raise
        raise ImageRejected("corrupt-image", f"the image could not be decoded ({error})") from None
    refusal = _too_large(*image.size, spec.limits)  # orientation may swap the sides, not grow
    if refusal is not None:
        raise refusal
    out = OUTPUT_KIND[kind]
    medium = _fit(image, spec.medium_px)
    thumbnail = _fit(medium, spec.thumbnail_px)
    return [
        _encode("thumbnail", thumbnail, out, spec),
        _encode("medium", medium, out, spec),
        _encode("original", image, out, spec),
    ]


def _clean_pixels(opened: Image.Image, out: ImageType) -> Image.Image:
    """The decoded pixels in sRGB and a mode the output format takes, with no metadata."""
    icc = opened.info.get("icc_profile")
    image: Image.Image = opened
    if image.mode == "P" or image.mode == "PA":
        image = image.convert(
            "RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB"
        )
    elif image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = image.convert("L") if out == "jpeg" else image.convert("RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode == "LA" and out != "png":
        image = image.convert("RGBA")
    if icc and image.mode in ("RGB", "RGBA", "CMYK"):
        image = _to_srgb(image, icc)
    if image.mode == "CMYK":
        image = image.convert("RGB")
    if out == "jpeg" and image.mode not in ("L", "RGB"):
        image = _flatten(image) if "A" in image.mode else image.convert("RGB")
    if out == "webp" and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    image.info.clear()
    return image


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, _SRGB, outputMode=output_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # an unusable profile: keep the pixels as they are, drop the profile
    return converted if converted is not None else image


def _flatten(image: Image.Image) -> Image.Image:
    """Transparent pixels over white, for formats without alpha."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def fit_within(width: int, height: int, box: int) -> tuple[int, int]:
    """The size that fits a box x box square, keeping the aspect ratio, never upscaling."""
    longest = max(width, height)
    if longest <= box:
        return width, height
    scale = box / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(image: Image.Image, box: int) -> Image.Image:
    size = fit_within(image.width, image.height, box)
    if size == image.size:
        return image
    # reducing_gap: a fast integer reduction first, then Lanczos over the last steps.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(name: str, image: Image.Image, out: ImageType, spec: RenderSpec) -> Rendered:
    buffer = io.BytesIO()
    image.info.clear()
    if out == "jpeg":
        # Progressive for what screens show first; the original stays baseline, where a
        # progressive encode costs six times as much for little gain.
        progressive = name != "original"
        image.save(buffer, "JPEG", quality=spec.jpeg_quality, progressive=progressive)
    elif out == "webp":
        image.save(buffer, "WEBP", quality=spec.webp_quality, method=4)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return Rendered(name, out, image.width, image.height, buffer.getvalue())
