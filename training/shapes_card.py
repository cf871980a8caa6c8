"""The shapes model's card (README.md in the model folder) and its learning-curve plot, written
from what the run recorded: ``training.json``, ``evaluation.json`` and ``learning_curve.jsonl``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from PIL import Image, ImageDraw
from shapes_parts import PROMPT_TOKENS

from gradio_diffusion_preview.bundled.shapes.evaluate import REQUIRED
from gradio_diffusion_preview.bundled.shapes.grammar import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    heldout_combinations,
    training_combinations,
)
from gradio_diffusion_preview.bundled.shapes.words import SYNONYMS

SERIES = {"colour": (200, 40, 40), "background": (40, 80, 220), "shape": (30, 150, 60)}


def read_curve(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curve(rows: list[dict], out: Path) -> None:
    """Two panels: the denoiser's training loss (log scale), and held-out accuracy, by step."""
    steps = [r for r in rows if r.get("stage") == "denoiser"]
    evals = [r for r in steps if "shape" in r]
    width, height, pad = 900, 330, 48
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    last = max(r["step"] for r in steps)
    panels = [
        (pad, pad, width // 2 - 20, height - pad),
        (width // 2 + pad, pad, width - 20, height - pad),
    ]

    def axes(box, title, y_labels):
        x0, y0, x1, y1 = box
        draw.rectangle(box, outline=(120, 120, 120))
        draw.text((x0, y0 - 30), title, fill="black")
        draw.text((x0, y1 + 6), "0", fill="black")
        draw.text((x1 - 30, y1 + 6), f"{last} steps", fill="black")
        for fraction, label in y_labels:
            y = y1 - fraction * (y1 - y0)
            draw.line((x0 - 4, y, x0, y), fill="black")
            draw.text((x0 - 42, y - 6), label, fill="black")

    low = min(r["loss"] for r in steps)
    high = max(r["loss"] for r in steps)
    span = math.log(high / low) or 1.0
    box = panels[0]
    axes(
        box,
        "training loss (Min-SNR weighted v, log scale)",
        [(0, f"{low:.3f}"), (1, f"{high:.3f}")],
    )

    def point(box, step, fraction):
        x0, y0, x1, y1 = box
        return (x0 + step / last * (x1 - x0), y1 - fraction * (y1 - y0))

    loss_points = [point(box, r["step"], math.log(r["loss"] / low) / span) for r in steps]
    draw.line(loss_points, fill=(60, 60, 60), width=2)
    box = panels[1]
    axes(
        box, "held-out prompts right (80 prompts, 20 steps)", [(0, "0%"), (0.5, "50%"), (1, "100%")]
    )
    for bar in REQUIRED.values():
        draw.line([point(box, 0, bar), point(box, last, bar)], fill=(200, 200, 200))
    for index, (name, colour) in enumerate(SERIES.items()):
        points = [point(box, r["step"], r[name]) for r in evals]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((box[0] + 8 + 110 * index, box[3] - 18), name, fill=colour)
    image.save(out, optimize=True)


def _table(rows: list[dict]) -> str:
    lines = [
        "| step | minutes | loss | colour | background | shape | size | position |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("stage") != "denoiser" or "shape" not in r:
            continue
        cells = [f"{r[name]:.0%}" for name in ("colour", "background", "shape", "size", "position")]
        lines.append(
            f"| {r['step']} | {r['seconds'] / 60:.1f} | {r['loss']:.4f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def _synonyms() -> str:
    meaning: dict[str, list[str]] = {}
    for word, grammar_word in SYNONYMS.items():
        meaning.setdefault(grammar_word, []).append(word)
    return "; ".join(f"{', '.join(words)} -> {word}" for word, words in meaning.items())


def _parameters(folder: Path) -> dict[str, float]:
    """Millions of parameters per part, read from the safetensors headers."""
    counts = {}
    for part in ("unet", "vae", "text_encoder"):
        total = 0
        for file in (folder / part).glob("*.safetensors"):
            with file.open("rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(size))
            for name, info in header.items():
                if name != "__metadata__":
                    total += math.prod(info["shape"])
        counts[part] = total / 1e6
    return counts


def _attention_levels(folder: Path) -> str:
    """Where the UNet attends (to itself and to the prompt), read from its config."""
    config = json.loads((folder / "unet" / "config.json").read_text())
    side = config["sample_size"]
    levels = []
    for block in config["down_block_types"]:
        if block.startswith("CrossAttn"):
            levels.append(f"{side} x {side}")
        side //= 2
    return "attention at " + ", ".join(levels) if levels else "no attention"


def _limits(t: dict) -> str:
    """What limited this run and what would close the gap, when the trainer recorded it."""
    return f"\n**What limited it.** {t['limits']}\n" if t.get("limits") else ""


def _decoder_note(t: dict) -> str:
    return f"; {t['decoder_note']}" if t.get("decoder_note") else ""


def _shipped(t: dict, rows: list[dict]) -> str:
    """Which checkpoint ships: the weight average at the best learning-curve evaluation."""
    trained = t.get("trained_steps") or max(
        (r["step"] for r in rows if r.get("stage") == "denoiser"), default=t["steps"]
    )
    planned = t.get("planned_steps", trained)
    stopped = "" if trained >= planned else f" (of {planned} planned; the run was stopped)"
    continued = ""
    for part in t.get("continued", []) or ([t["resumed"]] if t.get("resumed") else []):
        continued += (
            f"Continued (`--resume`) from batch {part['from_steps']} for {part['steps']} more "
            f"batches, with a fresh optimiser, warm-up and cosine decay from peak lr "
            f"{part['lr']}"
            + (
                f"; {part['added']} added (the new layers starting as no change)"
                if part.get("added")
                else ""
            )
            + ". "
        )
    return continued + (
        f"{trained} batches were trained{stopped}; what ships is the weight average (EMA) at "
        f"batch {t['steps']}, the best of the learning-curve evaluations "
        f"({t['denoiser_minutes']} min of denoiser training to get there)."
    )


def _per_shape(evaluation: dict) -> str:
    """A table of shape, colour and background accuracy per asked shape, if recorded."""
    table = evaluation.get("per_shape")
    if not table:
        return ""
    lines = [
        "| shape | prompts | shape right | colour right | background right |",
        "|---|---|---|---|---|",
    ]
    for shape, row in table.items():
        n = row["prompts"]
        lines.append(
            f"| {shape} | {n} | {row['shape'] / n:.0%} | {row['colour'] / n:.0%} "
            f"| {row['background'] / n:.0%} |"
        )
    return "\n".join(lines)


def _phrasings_result(phrasings: dict | None) -> str:
    """The held-out phrasings section (issue #26), from ``evaluation_phrasings.json``."""
    if not phrasings:
        return "Not evaluated on the held-out phrasings."
    acc = phrasings["accuracy"]
    text = (
        f"Over **{phrasings['prompts']} held-out phrasings**: prompts written as people write "
        "them (colour synonyms such as crimson, navy, gold; no articles; commas; capitals and "
        'full stops; the background first; "tiny", "in the centre"), every one of a '
        "held-out combination, so neither the text nor what the tokenizer makes of it was ever "
        f"a training prompt; sampling seeds {phrasings['seed']} and up, never used in training. "
        f"Shape colour **{acc['colour']:.1%}**, background **{acc['background']:.1%}**, shape "
        f"**{acc['shape']:.1%}**; size {acc['size']:.1%} and position {acc['position']:.1%} of "
        f"the prompts that name one; median {phrasings['seconds_per_image_median']:.2f} s per "
        "image. Reproduce with `python -m gradio_diffusion_preview.bundled.shapes.evaluate "
        "--phrasings`."
    )
    before = phrasings.get("before")
    if before:
        text += "\n\n" + "\n".join(
            f"- {label}: colour {b['colour']:.1%}, background {b['background']:.1%}, shape "
            f"{b['shape']:.1%}, size {b['size']:.1%}, position {b['position']:.1%}."
            for label, b in before.items()
        )
    return text + "\n\n" + _per_shape(phrasings)


def write_card(folder: Path, training: dict, evaluation: dict | None, curve_path: Path) -> None:
    rows = read_curve(curve_path)
    recorded = folder / "evaluation_phrasings.json"
    phrasings = json.loads(recorded.read_text()) if recorded.is_file() else None
    vae_rows = [r for r in rows if r.get("stage") == "vae_check"]
    vae_note = ""
    if vae_rows:
        first, last = vae_rows[0], vae_rows[-1]
        vae_note = (
            f"Its reconstructions of {last['images']} drawings are judged right in colour "
            f"{last['colour']:.1%}, background {last['background']:.1%} and shape "
            f"{last['shape']:.1%} of the time (the ceiling for the whole model)"
        )
        if len(vae_rows) > 1:
            vae_note += (
                f"; before the decoder's fine-tuning: {first['colour']:.1%}, "
                f"{first['background']:.1%} and {first['shape']:.1%}"
            )
        vae_note += "."
    plot_curve(rows, folder / "learning_curve.png")
    params = _parameters(folder)
    megabytes = sum(f.stat().st_size for f in folder.rglob("*.safetensors")) / 1e6
    if evaluation:
        acc = evaluation["accuracy"]
        verdict = "meets" if evaluation["passes"] else "does not meet"
        result = (
            f"Over **{evaluation['prompts']} prompts of held-out combinations** (two per "
            "combination: the plain prompt, and one that also names a size and/or a position), "
            "run through this package's diffusers backend at its defaults (20 Euler steps, "
            f"guidance 7.5, 64 x 64): shape colour **{acc['colour']:.1%}**, background colour "
            f"**{acc['background']:.1%}**, shape **{acc['shape']:.1%}**; size "
            f"{acc['size']:.1%} and position {acc['position']:.1%} of the prompts that name one. "
            f"Median **{evaluation['seconds_per_image_median']:.2f} s per image** on the "
            f"training machine (max {evaluation['seconds_per_image_max']:.2f} s). It "
            f"{verdict} the bar of issue #9 (colours {REQUIRED['colour']:.0%}, shape "
            f"{REQUIRED['shape']:.0%}, under 2 s)."
        )
    else:
        result = "Not evaluated (`--skip-final-eval`)."
    colours = ", ".join(COLOURS)
    held, trained = len(heldout_combinations()), len(training_combinations())
    t = training
    text = f"""---
license: apache-2.0
library_name: diffusers
pipeline_tag: text-to-image
tags:
- text-to-image
- stable-diffusion
- synthetic-data
- tiny
inference: false
---

# Shapes: a tiny text-to-image model that follows its prompts

A {sum(params.values()):.1f} M-parameter model with the Stable Diffusion structure
(`StableDiffusionPipeline`: CLIP text encoder, UNet, AutoencoderKL, Euler scheduler), trained from
scratch, on CPU, on pictures drawn by a script. It draws **one shape in a named colour on a plain
background of another named colour**, 64 x 64 pixels, from plain English: *"a red circle on a
blue background"*. It ships inside the `gradio-diffusion-preview` wheel so that the demo shows
real pictures forming, offline.

![Learning curve](learning_curve.png)

## What it draws

- Shapes: {", ".join(SHAPES)}. Colours, for the shape and the background: {colours}.
- Sizes (optional): {", ".join(SIZES)}; unnamed, a medium size.
- Positions (optional): {", ".join(POSITIONS.values())}; unnamed, in the middle.
- Phrasings it was trained on: "a small red circle on the left of a blue background",
  "a blue background with a red circle at the top", "a red circle on blue", and, as people
  also write them, "red circle, blue background", "blue background, red circle", "red circle
  on blue background". Each word of this grammar is one token of its word-level tokenizer.
- How people write (issue #26): the tokenizer's normalizer (built from
  `gradio_diffusion_preview.bundled.shapes.words`) reads punctuation and digits as spaces (a
  comma no longer ends the prompt) and common synonyms as the grammar's words: {_synonyms()}.
  `words.unknown_words(prompt)` lists what it does not know (plurals and counts included: it
  draws one shape), and `words.prompt_hint(prompt)` says what to write when a prompt names no
  shape (it would come out as a plain colour).

## What it cannot do

- Anything else: other objects or colours, several shapes, text, textures, rotation, free
  layouts (the layout follows the words; each prompt varies only a little from seed to seed).
  Words outside the grammar split into letter tokens it was taught to ignore; a prompt keeps
  {PROMPT_TOKENS} tokens.
- Sizes other than 64 x 64: larger pictures tile several shapes.
- It is not always right even inside its grammar: see the evaluation below.
- The colours are eight fixed sRGB values; orange and yellow are the closest pair.

## How it was trained

`training/train_shapes.py` in the repository, seed {t["seed"]}: `{t["command"]}`
({t["total_minutes"]} minutes to the shipped checkpoint on {t["machine"]}; the machine has
{os.cpu_count()} CPU cores, shared with other work during the run; {t["software"]}).

- **Data**: pictures drawn with Pillow from {trained} of the {trained + held} (shape, colour,
  background) combinations; half name a size and half a position. The prompt is empty 10% of
  the time (for classifier-free guidance). The {held} held-out combinations never appear in
  training, in any part of the model.
- **Autoencoder** ({params["vae"]:.2f} M parameters; 64 px -> 16 x 16 x 4 latents):
  {t["vae_steps"]} batches of {t["vae_batch"]} fresh drawings ({t["vae_minutes"]} min), L1
  reconstruction + KL + a linear latent-to-colour read-out; then the decoder alone (the
  encoder, so the latent space, frozen) for {t.get("decoder_steps", 0)} batches
  ({t.get("decoder_minutes", 0)} min{_decoder_note(t)}). {vae_note}
- **Denoiser**: UNet ({params["unet"]:.2f} M; {_attention_levels(folder)}) and CLIP text encoder
  ({params["text_encoder"]:.2f} M) trained together on {t["images"]} encoded drawings, batches
  of {t["batch"]}: v-prediction, cosine noise schedule, Min-SNR-5 loss weighting, AdamW
  (warm-up, cosine decay, peak lr {t["lr"]}). {_shipped(t, rows)}
- Weights are float16 safetensors, {megabytes:.1f} MB in all.
- `latent_rgb.json`: latent-to-RGB factors fitted by least squares on the autoencoder; the
  diffusers backend's `latent_rgb` step previewer uses them for this model.

## Evaluation

{result} Reproduce with `python -m gradio_diffusion_preview.bundled.shapes.evaluate`.

{_per_shape(evaluation or {})}

### Held-out phrasings

{_phrasings_result(phrasings)}

{_limits(t)}
Learning curve: the weight average drawing the same held-out prompts (one batch, same seeds)
during training; `learning_curve.jsonl` has every logged step.

{_table(rows)}

## Use

```python
from diffusers import StableDiffusionPipeline
from gradio_diffusion_preview.bundled.shapes import model_dir

pipe = StableDiffusionPipeline.from_pretrained(model_dir())
pipe("a big green circle on a purple background", height=64, width=64).images[0]
```
"""
    (folder / "README.md").write_text(text)
