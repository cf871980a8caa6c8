"""The preview's data URL: the same pixels as a plain JPEG of its quality, in fewer bytes."""

from __future__ import annotations

import base64
import io

import numpy as np
import PIL.Image
import pytest

from gradio_diffusion_preview.preview_encoding import InvalidPreview, encode_preview


def noisy_preview(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.repeat(np.repeat(rng.integers(0, 255, (8, 8, 3)), 8, 0), 8, 1)
    return np.clip(smooth + rng.normal(0, 40, smooth.shape), 0, 255).astype(np.uint8)


def decoded(url: str) -> tuple[bytes, np.ndarray]:
    header, payload = url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    data = base64.b64decode(payload)
    return data, np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


def test_jpeg_previews_have_optimised_tables_same_pixels_fewer_bytes():
    array = noisy_preview()
    data, pixels = decoded(encode_preview(array, quality=80))
    plain = io.BytesIO()
    PIL.Image.fromarray(array).save(plain, format="JPEG", quality=80)
    plain_pixels = np.asarray(PIL.Image.open(io.BytesIO(plain.getvalue())))
    assert np.array_equal(pixels, plain_pixels)
    assert len(data) < 0.95 * len(plain.getvalue())


def test_large_previews_are_scaled_down_never_up():
    _, small = decoded(encode_preview(noisy_preview()[:40, :64]))
    assert small.shape == (40, 64, 3)
    _, big = decoded(encode_preview(np.zeros((600, 1200, 3), np.uint8), max_side=512))
    assert big.shape == (256, 512, 3)


@pytest.mark.parametrize(
    ("preview", "named"),
    [(np.zeros((8, 8, 3), np.float32), "float32"), ("a path", "str"), (np.zeros((0, 4, 3)), "")],
)
def test_what_is_not_an_image_is_refused_with_the_rule(preview, named):
    with pytest.raises(InvalidPreview, match="uint8") as error:
        encode_preview(preview)
    assert named in str(error.value)
