"""Generation info inside the final image files, where image tools look for it.

PNG: one text chunk per entry (``parameters``, which AUTOMATIC1111's "PNG Info" and most image
browsers read, and a JSON chunk); Gradio's cache writer copies text entries of ``image.info``
into PNG chunks. WebP has no text chunks: the infotext goes into EXIF UserComment, where
AUTOMATIC1111 writes it for its JPEG and WebP files.
"""

from __future__ import annotations

import PIL.Image
from PIL import ExifTags

EXIF_UNICODE_PREFIX = b"UNICODE\0"


def embed_metadata(image: PIL.Image.Image, text: dict[str, str], fmt: str) -> PIL.Image.Image:
    """A copy of ``image`` that carries ``text`` when saved as ``fmt`` by Gradio's cache
    writer (``processing_utils.save_pil_to_cache``); the backend's image is left untouched."""
    tagged = image.copy()
    if fmt.lower() == "png":
        tagged.info.update(text)
    elif "parameters" in text:
        exif = tagged.getexif()
        comment = EXIF_UNICODE_PREFIX + text["parameters"].encode("utf-16-be")
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = comment
        tagged.info["exif"] = exif.tobytes()
    return tagged


def read_exif_comment(image: PIL.Image.Image) -> str | None:
    """The infotext ``embed_metadata`` wrote into a WebP (or JPEG) file's EXIF, if any."""
    raw = image.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
    if isinstance(raw, bytes) and raw.startswith(EXIF_UNICODE_PREFIX):
        return raw[len(EXIF_UNICODE_PREFIX) :].decode("utf-16-be")
    return raw if isinstance(raw, str) else None
