"""The compact, picklable form in which a run's events cross from a Serve replica to its caller.

Each event becomes a small dict (``{"event": "step", ...}``) of plain values, so the two sides
need only agree on field names, not on class versions, and unknown fields are ignored. Images
travel in memory, never as files:

- previews as ``HxWx3`` ``uint8`` arrays (``"array"``, the default: Ray hands numpy arrays over
  without pickling their data, and the caller encodes them for the browser exactly as it would
  a local preview) or as JPEG bytes (``"jpeg"``: smaller on a slow link between machines, at
  the cost of an encode on the replica and a decode on the caller);
- final images as arrays (``"array"``, the default) or as lossless PNG bytes (``"png"``).

``bench/ray_hop.py`` measures each choice. The first item of every stream is a ``replica``
message naming the replica and describing its backend, so the caller learns where the run went
and keeps its copy of the hosted backend's capabilities and models fresh.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image

from ..events import Failed, Finished, GenerationEvent, Started, Status, Step

JPEG_QUALITY = 90
PNG_COMPRESS_LEVEL = 1
"""Fast PNG: the bytes cross a network once; a slower, tighter encode is not worth it."""


@dataclass(frozen=True)
class EncodedImage:
    """An image as encoded bytes (``format`` is ``jpeg`` or ``png``)."""

    format: str
    data: bytes

    def decode(self) -> PIL.Image.Image:
        image = PIL.Image.open(io.BytesIO(self.data))
        image.load()
        return image


def _encode(image: Any, fmt: str) -> Any:
    """An image in the wire form ``fmt``; anything that is not an image is passed on as it is,
    so the caller reports a backend's bad preview exactly as a local run would."""
    if fmt == "array":
        if isinstance(image, PIL.Image.Image):
            return np.asarray(image if image.mode in ("RGB", "RGBA", "L") else image.convert("RGB"))
        return image
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3):
        image = PIL.Image.fromarray(image)
    if not isinstance(image, PIL.Image.Image):
        return image
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return EncodedImage(fmt, buffer.getvalue())


def _preview_payload(preview: Any, fmt: str) -> Any:
    if isinstance(preview, Sequence) and not isinstance(preview, str | bytes | np.ndarray):
        return [_encode(image, fmt) for image in preview]
    return _encode(preview, fmt)


def _fields(event: Any) -> dict[str, Any]:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def to_wire(
    event: GenerationEvent, preview_format: str = "array", image_format: str = "array"
) -> dict[str, Any]:
    """``event`` as a small dict of plain values, arrays and bytes."""
    if isinstance(event, Step):
        preview = None if event.preview is None else _preview_payload(event.preview, preview_format)
        return {"event": "step", "step": event.step, "total_steps": event.total_steps,
                "preview": preview}  # fmt: skip
    if isinstance(event, Finished):
        return {
            **_fields(event),
            "event": "finished",
            "images": [_encode(image, image_format) for image in event.images],
        }
    for kind, cls in _KINDS.items():
        if isinstance(event, cls):
            return {**_fields(event), "event": kind}
    raise TypeError(f"not a generation event: {type(event).__name__}")


def _image(payload: Any, final: bool) -> Any:
    if isinstance(payload, EncodedImage):
        return payload.decode()
    if final and isinstance(payload, np.ndarray):
        # Own the pixels: an array from Ray's object store is a read-only view into it.
        return PIL.Image.fromarray(np.array(payload))
    return payload


def from_wire(data: dict[str, Any]) -> GenerationEvent:
    """The event ``to_wire`` made; raises ``ValueError`` for anything else."""
    kind = data.get("event") if isinstance(data, dict) else None
    cls = {"step": Step, "finished": Finished, **_KINDS}.get(kind)
    if cls is None:
        raise ValueError(f"not a wire event: {str(data)[:200]}")
    names = {f.name for f in dataclasses.fields(cls)}
    fields = {name: value for name, value in data.items() if name in names}
    if cls is Step and isinstance(fields.get("preview"), list):
        fields["preview"] = [_image(item, final=False) for item in fields["preview"]]
    elif cls is Step:
        fields["preview"] = _image(fields.get("preview"), final=False)
    elif cls is Finished:
        fields["images"] = [_image(item, final=True) for item in fields.get("images", [])]
    if "preview_size" in fields and fields["preview_size"] is not None:
        fields["preview_size"] = tuple(fields["preview_size"])
    return cls(**fields)


_KINDS: dict[str, type] = {"started": Started, "status": Status, "failed": Failed}
