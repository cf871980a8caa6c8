"""Pure numpy drawing: a fractal view picked by the prompt and seed, and the noise that a
"denoising" run starts from. Nothing here knows about gradio-diffusion-preview."""

from __future__ import annotations

import hashlib
import math

import numpy as np

# Cosine palettes, colour(t) = a + b * cos(2 * pi * (c * t + d)), one (a, b, c, d) per name.
PALETTES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "fire": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 0.7, 0.4), (0.0, 0.15, 0.20)),
    "ocean": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (0.30, 0.20, 0.20)),
    "forest": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (2.0, 1.0, 0.0), (0.50, 0.20, 0.25)),
    "neon": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (0.0, 0.33, 0.67)),
    "mono": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}

# Places in the Mandelbrot set worth looking at: (centre real, centre imaginary, view width).
MANDELBROT_VIEWS = (
    (-0.75, 0.0, 3.0),
    (-0.743643887, 0.131825904, 0.02),
    (-0.7453, 0.1127, 0.012),
    (-1.25066, 0.02012, 0.02),
    (-0.16, 1.0405, 0.05),
    (0.285, 0.0135, 0.03),
    (-0.81153, 0.20143, 0.008),
)


def prompt_digest(prompt: str, model: str) -> bytes:
    """A stable digest of the prompt (Python's own ``hash`` changes between processes)."""
    return hashlib.sha256(f"{model}\n{prompt.strip().lower()}".encode()).digest()


def palette_for(prompt: str, model: str) -> str:
    """The palette a prompt gets when the request names none."""
    names = sorted(PALETTES)
    return names[prompt_digest(prompt, model)[0] % len(names)]


def render(
    model: str,
    prompt: str,
    seed: int,
    width: int,
    height: int,
    palette: str,
) -> np.ndarray:
    """The finished picture as an ``HxWx3`` float array in [-1, 1]."""
    digest = prompt_digest(prompt, model)
    rng = np.random.default_rng([int.from_bytes(digest[:8], "little"), seed])
    aspect = height / width
    if model == "julia":
        angle = 2 * math.pi * rng.random()
        c = 0.7885 * complex(math.cos(angle), math.sin(angle))
        view_width = 3.2 / rng.uniform(1.0, 1.6)
        z = _grid(0.0, 0.0, view_width, width, height, aspect)
        mu = escape_time(z, np.full(z.shape, c), 120)
    else:
        cx, cy, view_width = MANDELBROT_VIEWS[digest[1] % len(MANDELBROT_VIEWS)]
        cx += rng.uniform(-0.1, 0.1) * view_width
        cy += rng.uniform(-0.1, 0.1) * view_width
        view_width *= rng.uniform(0.7, 1.4)
        c = _grid(cx, cy, view_width, width, height, aspect)
        max_iter = int(80 + 60 * max(0.0, math.log10(3.0 / view_width)))
        mu = escape_time(np.zeros_like(c), c, max_iter)
    return _colour(mu, palette, offset=rng.random())


def escape_time(z: np.ndarray, c: np.ndarray, max_iter: int) -> np.ndarray:
    """Smooth escape-time counts of ``z -> z*z + c``; NaN for points that never escape."""
    shape = z.shape
    z, c = z.ravel().copy(), c.ravel().copy()
    index = np.arange(z.size)
    mu = np.full(z.size, np.nan)
    for i in range(max_iter):
        z = z * z + c
        size2 = z.real * z.real + z.imag * z.imag
        out = size2 > 256.0
        if out.any():
            mu[index[out]] = i + 1 - np.log2(0.5 * np.log(size2[out]))
            keep = ~out
            z, c, index = z[keep], c[keep], index[keep]
            if not index.size:
                break
    return mu.reshape(shape)


def noise(seed: int, width: int, height: int) -> np.ndarray:
    """The starting noise of a run, ``HxWx3`` standard normal, fixed by the seed."""
    return np.random.default_rng(seed).standard_normal((height, width, 3))


def denoised(final: np.ndarray, start: np.ndarray, progress: float) -> np.ndarray:
    """The picture ``progress`` (0..1) of the way from pure noise to ``final``, mixed the way a
    diffusion model's cosine schedule mixes them."""
    if progress >= 1.0:
        return final
    keep = math.cos((1.0 - progress + 0.008) / 1.008 * math.pi / 2) ** 2
    return math.sqrt(keep) * final + math.sqrt(1.0 - keep) * start


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[-1, 1] floats to ``HxWx3`` ``uint8``."""
    return np.clip((image + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


def half_size(image: np.ndarray) -> np.ndarray:
    """Average each 2x2 block (sizes are even: the backend asks for multiples of 8)."""
    height, width, channels = image.shape
    return image.reshape(height // 2, 2, width // 2, 2, channels).mean(axis=(1, 3))


def _grid(
    cx: float,
    cy: float,
    view_width: float,
    width: int,
    height: int,
    aspect: float,
) -> np.ndarray:
    xs = np.linspace(cx - view_width / 2, cx + view_width / 2, width)
    half_height = view_width * aspect / 2
    ys = np.linspace(cy + half_height, cy - half_height, height)
    return xs[np.newaxis, :] + 1j * ys[:, np.newaxis]


def _colour(mu: np.ndarray, palette: str, offset: float) -> np.ndarray:
    a, b, c, d = (np.array(part) for part in PALETTES[palette])
    t = np.nan_to_num(mu, nan=0.0)[..., np.newaxis] * 0.03 + offset
    rgb = a + b * np.cos(2 * math.pi * (c * t + d))
    rgb[np.isnan(mu)] = 0.02  # inside the set: near black
    return rgb * 2.0 - 1.0
