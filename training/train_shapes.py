"""Train the bundled shapes model from scratch on CPU, reproducibly from a seed.

    make train-shapes  # = python training/train_shapes.py --seed 0 --out <the package's model>

Stages: train the autoencoder on fresh drawings; draw the training set and encode it once; fit
the latent scale and the latent-to-RGB preview factors; train the UNet and text encoder together,
drawing the held-out evaluation prompts with the weight average every ``--eval-every`` steps;
save the averaged weights as a diffusers folder (float16 safetensors); evaluate it through the
diffusers backend; write the model card.

The step counts are the budget: the same seed and step counts give the same model on the same
software (torch CPU kernels are deterministic for a fixed thread count). ``--minutes`` instead
sizes the denoiser's steps to a wall-clock budget from the measured speed, and prints the count
so the run can be repeated with ``--steps``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shapes_card import write_card  # noqa: E402
from shapes_data import draw_batch, images_to_tensor  # noqa: E402
from shapes_diffusion import train_denoiser  # noqa: E402
from shapes_parts import (  # noqa: E402
    assemble,
    load_tokenizer,
    make_scheduler,
    make_text_encoder,
    make_tokenizer,
    make_unet,
    make_vae,
    mark_fast_tokenizer,
    widen_unet,
)
from shapes_vae import encode, finetune_decoder, fit_latent_rgb, train_vae  # noqa: E402

from gradio_diffusion_preview.bundled.shapes import evaluate as shapes_eval  # noqa: E402
from gradio_diffusion_preview.bundled.shapes.grammar import WORDS, prompt_for  # noqa: E402

CHUNK = 2048


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("training/runs/shapes"))
    parser.add_argument("--vae-steps", type=int, default=2400, help="autoencoder batches")
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument(
        "--decoder-steps",
        type=int,
        default=800,
        help="batches of decoder-only fine-tuning after the autoencoder (encoder frozen)",
    )
    parser.add_argument(
        "--decoder-only",
        action="store_true",
        help="only fine-tune the decoder of the model saved in --out (the encoder, so the "
        "latent space and the denoiser, unchanged) and save it back",
    )
    parser.add_argument("--images", type=int, default=60_000, help="training pictures drawn")
    parser.add_argument("--steps", type=int, default=4000, help="denoiser batches")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--minutes", type=float, help="size --steps to this many minutes")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--guidance", type=float, default=7.5, help="for the learning curve")
    parser.add_argument("--eval-limit", type=int, help="final evaluation: first N prompts only")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; on a shared, busy CPU one thread is many times faster than two "
        "(the threads of a step wait for each other), and the count is part of reproducibility",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        help="continue the denoiser of the run saved in this folder (its weight average, its "
        "autoencoder and tokenizer unchanged) for --steps more batches at --lr, into --out; "
        "the learning curve and the card go on from where it stopped",
    )
    parser.add_argument(
        "--resume-images",
        type=int,
        help="with --resume: draw this many training pictures (default: as many as the source)",
    )
    parser.add_argument(
        "--attention-16",
        action="store_true",
        help="with --resume: add attention at the 16 x 16 level of the UNet (issue #26), every "
        "trained weight kept and the new layers starting as no change",
    )
    parser.add_argument(
        "--favour",
        type=parse_favour,
        help="with --resume: draw some shapes' training combinations more often, e.g. "
        "'star=3,triangle=2' (the shapes the model draws worst; held-out combinations never)",
    )
    parser.add_argument(
        "--count-position",
        action="store_true",
        help="with --resume: the checkpoint kept is the best by position too (its 80%% bar, "
        "issue #26), not only by the evaluation's bars",
    )
    parser.add_argument("--skip-final-eval", action="store_true")
    parser.add_argument(
        "--limits",
        help="with --finish or --card-only: what limited the run and what would close the gap, "
        "recorded in training.json and the card",
    )
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="only (re)write the card of the model in --out from its recorded files",
    )
    parser.add_argument(
        "--finish",
        action="store_true",
        help="only evaluate the checkpoint saved in --out and write its card (after a run was "
        "stopped early: the best checkpoint so far is a complete model)",
    )
    return parser.parse_args(argv)


def parse_favour(text: str) -> dict[str, float]:
    """``'star=3,triangle=2'`` -> ``{"star": 3.0, "triangle": 2.0}``, naming a bad shape."""
    from gradio_diffusion_preview.bundled.shapes.grammar import SHAPES

    favour = {}
    for part in text.split(","):
        shape, _, weight = part.partition("=")
        if shape.strip() not in SHAPES:
            raise argparse.ArgumentTypeError(f"{shape!r} is not a shape; pick from {SHAPES}")
        favour[shape.strip()] = float(weight or 2)
    return favour


def log_to(path: Path):
    def log(row: dict) -> None:
        print(json.dumps(row), flush=True)
        with path.open("a") as out:
            out.write(json.dumps(row) + "\n")

    return log


# What the checkpoint choice weighs with --count-position: the evaluation's bars and issue #26's
# position target (without it a checkpoint with better shapes but centred positions could win).
# Without the option the choice weighs the evaluation's bars only, as for the shipped weights.
POSITION_BARS = {**shapes_eval.REQUIRED, "position": 0.8}


def quality(row: dict, bars: dict[str, float] = shapes_eval.REQUIRED) -> float:
    """How close a learning-curve row comes to ``bars``: its worst attribute, relative to the bar
    for it (1.0 = exactly at the bar), plus a little of the mean to break ties."""
    relative = [row[name] / bar for name, bar in bars.items()]
    return min(relative) + 0.01 * sum(relative) / len(relative)


def curve_evaluator(tokenizer, vae, scheduler, guidance: float, checkpoint=None):
    """What the learning curve records: the held-out evaluation prompts drawn by the weight
    average in one batch (same seeds as the backend evaluation), judged. ``checkpoint(averaged,
    step, row)`` is called with each evaluated row (to keep the best model so far)."""
    scenes = shapes_eval.evaluation_scenes()
    prompts = [prompt_for(scene) for scene in scenes]

    @torch.no_grad()
    def evaluate(averaged, step: int) -> dict:
        unet, text_encoder = averaged
        pipe = assemble(tokenizer, text_encoder, vae, unet, scheduler)
        pipe.set_progress_bar_config(disable=True)
        began = time.monotonic()
        images = []
        for start in range(0, len(prompts), 40):
            part = prompts[start : start + 40]
            generators = [torch.Generator().manual_seed(start + i) for i in range(len(part))]
            images += pipe(
                part,
                num_inference_steps=20,
                guidance_scale=guidance,
                height=64,
                width=64,
                generator=generators,
            ).images
        result = shapes_eval.score(scenes, images)
        row = {**result.summary(), "eval_seconds": round(time.monotonic() - began, 1)}
        if checkpoint:
            row.update(checkpoint(averaged, step, row))
        return row

    return evaluate


def draw_training_set(vae, count: int, seed: int, favour: dict[str, float] | None = None):
    """Draw ``count`` training pictures and encode them; keeps the first chunk of pictures."""
    rng = random.Random(seed)
    latents, scenes, first = [], [], None
    for start in range(0, count, CHUNK):
        images, chunk_scenes = draw_batch(rng, min(CHUNK, count - start), favour)
        pixels = images_to_tensor(images)
        latents.append(encode(vae, pixels).half())
        scenes += chunk_scenes
        first = pixels if first is None else first
    return torch.cat(latents), scenes, first


def prepare_out(folder: Path) -> None:
    """An empty output folder: a new one, or a previous run's (whose files are removed)."""
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / "learning_curve.jsonl").is_file():
            raise SystemExit(f"{folder} holds something other than a training run; pick another")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.decoder_only:
        return decoder_only(args)
    if args.finish or args.card_only:
        if args.limits:
            recorded = json.loads((args.out / "training.json").read_text())
            recorded["limits"] = args.limits
            (args.out / "training.json").write_text(json.dumps(recorded, indent=1))
        return finish(args.out, args.skip_final_eval, args.eval_limit, args.card_only)
    if args.resume:
        return resume(args)
    torch.manual_seed(args.seed)
    prepare_out(args.out)
    log_path = args.out / "learning_curve.jsonl"
    log = log_to(log_path)
    began = time.monotonic()

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = make_tokenizer(Path(scratch), WORDS)
    text_encoder, vae, unet = make_text_encoder(len(tokenizer)), make_vae(), make_unet()
    scheduler = make_scheduler()

    vae_began = time.monotonic()
    train_vae(vae, args.vae_steps, args.seed, batch=args.vae_batch, log=log)
    vae_minutes = (time.monotonic() - vae_began) / 60

    latents, scenes, sample_images = draw_training_set(vae, args.images, args.seed + 1)
    scale = 1.0 / latents.float().std().item()
    vae.register_to_config(scaling_factor=round(scale, 5))
    latents = (latents.float() * scale).half()
    factors, bias = fit_latent_rgb(latents[: len(sample_images)].float(), sample_images)
    log({"stage": "latents", "images": len(latents), "scaling_factor": scale})
    log({"stage": "vae_check", **check_reconstructions(vae, latents[:256], scenes[:256])})
    decoder_began = time.monotonic()
    if args.decoder_steps:
        finetune_decoder(vae, args.decoder_steps, args.seed + 3, batch=args.vae_batch, log=log)
        log({"stage": "vae_check", **check_reconstructions(vae, latents[:256], scenes[:256])})
    decoder_minutes = (time.monotonic() - decoder_began) / 60

    steps = args.steps
    if args.minutes:
        steps = size_steps(args, unet, text_encoder, tokenizer, scheduler, latents, scenes)
    (args.out / "latent_rgb.json").write_text(
        json.dumps({"factors": factors, "bias": bias, "fitted_on": "scaled VAE latent means"})
    )
    training = {
        "seed": args.seed,
        "command": " ".join(["python", "training/train_shapes.py", *sys.argv[1:]]),
        "vae_steps": args.vae_steps,
        "vae_batch": args.vae_batch,
        "images": args.images,
        "planned_steps": steps,
        "batch": args.batch,
        "lr": args.lr,
        "vae_minutes": round(vae_minutes, 1),
        "decoder_steps": args.decoder_steps,
        "decoder_minutes": round(decoder_minutes, 1),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} CPU threads, no GPU",
        "software": f"Python {platform.python_version()}, torch {torch.__version__}",
    }
    checkpoint = best_checkpoint(args.out, training, (tokenizer, vae, scheduler), began)

    train_denoiser(
        unet,
        text_encoder,
        tokenizer,
        scheduler,
        latents,
        scenes,
        steps,
        args.seed + 2,
        batch=args.batch,
        lr=args.lr,
        eval_every=args.eval_every,
        evaluate=curve_evaluator(tokenizer, vae, scheduler, args.guidance, checkpoint),
        log=log,
    )
    training["trained_steps"] = steps
    (args.out / "training.json").write_text(json.dumps(training, indent=1))
    return finish(args.out, args.skip_final_eval, args.eval_limit)


def best_checkpoint(
    out: Path,
    training: dict,
    parts: tuple,
    began: float,
    steps_before: int = 0,
    minutes_before: float = 0.0,
    total_before: float = 0.0,
    bars: dict[str, float] = shapes_eval.REQUIRED,
):
    """The learning curve's ``checkpoint`` callback: save the weight average (with ``parts``:
    the tokenizer, autoencoder and scheduler) over ``out``'s model when it is the best so far,
    and record in ``training.json`` what it took to get there (counting a resumed run's
    earlier batches and minutes), so a stopped run still leaves a complete model."""
    tokenizer, vae, scheduler = parts
    best = {"quality": -1.0}
    denoiser_began = time.monotonic()

    def checkpoint(averaged, step: int, row: dict) -> dict:
        if quality(row, bars) <= best["quality"]:
            return {"saved": False}
        best["quality"] = quality(row, bars)
        unet_copy, text_copy, vae_copy = (copy.deepcopy(m) for m in (*averaged, vae))
        pipe = assemble(tokenizer, text_copy, vae_copy, unet_copy, scheduler)
        pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
        mark_fast_tokenizer(out)
        minutes = (time.monotonic() - denoiser_began) / 60
        training.update(
            steps=steps_before + step,
            denoiser_minutes=round(minutes_before + minutes, 1),
            total_minutes=round(total_before + (time.monotonic() - began) / 60, 1),
        )
        (out / "training.json").write_text(json.dumps(training, indent=1))
        return {"saved": True}

    return checkpoint


def resume(args) -> int:
    """``--resume FOLDER``: go on training the denoiser saved in FOLDER (its weight average,
    upcast to float32) on the same drawings, with a fresh optimiser and learning-rate
    schedule; the step counts, minutes and learning curve continue FOLDER's."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    source, out = args.resume, args.out
    if source.resolve() == out.resolve():
        raise SystemExit("--resume needs another --out folder (the source stays as it was)")
    torch.manual_seed(args.seed + 10)
    prepare_out(out)
    for name in ("learning_curve.jsonl", "latent_rgb.json"):
        shutil.copy(source / name, out / name)
    before = json.loads((source / "training.json").read_text())
    earlier = before.pop("continued", [])  # earlier continuations (a first one: "resumed")
    if "resumed" in before:
        earlier.append(before.pop("resumed"))
    offset, minutes_before = before["trained_steps"], before["denoiser_minutes"]
    total_before = before["total_minutes"]
    tokenizer = load_tokenizer(source / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(source / "text_encoder", torch_dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(source / "unet", torch_dtype=torch.float32)
    if args.attention_16 and "DownBlock2D" in unet.config.down_block_types:
        unet = widen_unet(unet)
    vae = AutoencoderKL.from_pretrained(source / "vae", torch_dtype=torch.float32).eval()
    scheduler = make_scheduler()
    began = time.monotonic()
    images = args.resume_images or before["images"]
    latents, scenes, _ = draw_training_set(vae, images, args.seed + 1, args.favour)
    latents = (latents.float() * vae.config.scaling_factor).half()
    if args.minutes:
        args.steps = size_steps(args, unet, text_encoder, tokenizer, scheduler, latents, scenes)
        args.eval_every = args.eval_every or args.steps
    write = log_to(out / "learning_curve.jsonl")

    def log(row: dict) -> None:  # the curve goes on from the source's last batch
        if row.get("stage") == "denoiser":
            row = {
                **row,
                "step": row["step"] + offset,
                "seconds": round(row["seconds"] + minutes_before * 60, 1),
            }
        write(row)

    training = {
        **before,
        "command": f"{before['command']}, then python training/train_shapes.py "
        + " ".join(sys.argv[1:]),
        "continued": [
            *earlier,
            {
                "from_steps": offset,
                "steps": args.steps,
                "lr": args.lr,
                **({"added": "attention at 16 x 16"} if args.attention_16 else {}),
                **({"favoured": args.favour} if args.favour else {}),
                **({"chosen_by": sorted(POSITION_BARS)} if args.count_position else {}),
            },
        ],
        "planned_steps": offset + args.steps,
    }
    checkpoint = best_checkpoint(
        out,
        training,
        (tokenizer, vae, scheduler),
        began,
        steps_before=offset,
        minutes_before=minutes_before,
        total_before=total_before,
        bars=POSITION_BARS if args.count_position else shapes_eval.REQUIRED,
    )

    train_denoiser(
        unet,
        text_encoder,
        tokenizer,
        scheduler,
        latents,
        scenes,
        args.steps,
        args.seed + 12,
        batch=args.batch,
        lr=args.lr,
        eval_every=args.eval_every,
        evaluate=curve_evaluator(tokenizer, vae, scheduler, args.guidance, checkpoint),
        log=log,
    )
    training["trained_steps"] = offset + args.steps
    (out / "training.json").write_text(json.dumps(training, indent=1))
    return finish(out, args.skip_final_eval, args.eval_limit)


def decoder_only(args) -> int:
    """``--decoder-only``: fine-tune the saved model's decoder, check its reconstructions of the
    drawings the first check used, save it back (float16) and record it in ``training.json``."""
    from diffusers import AutoencoderKL

    folder = args.out
    began = time.monotonic()
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32)
    log = log_to(folder / "learning_curve.jsonl")
    finetune_decoder(vae, args.decoder_steps, args.seed + 3, batch=args.vae_batch, log=log)
    images, scenes = draw_batch(random.Random(args.seed + 1), 256)
    latents = encode(vae, images_to_tensor(images)) * vae.config.scaling_factor
    log({"stage": "vae_check", **check_reconstructions(vae, latents, scenes)})
    vae.to(torch.float16).save_pretrained(folder / "vae", safe_serialization=True)
    training = json.loads((folder / "training.json").read_text())
    training.update(
        decoder_steps=args.decoder_steps,
        decoder_minutes=round((time.monotonic() - began) / 60, 1),
        decoder_note="fine-tuned by --decoder-only beside the denoiser's training; the "
        "learning-curve evaluations used the decoder before it",
    )
    (folder / "training.json").write_text(json.dumps(training, indent=1))
    return 0


def write_model_defaults(folder: Path) -> None:
    """``diffusion_preview.json``: the size it was trained at and the settings it was evaluated
    with, which the diffusers backend offers as this model's defaults; sizes up to 128 (where
    it tiles 2 x 2 shapes), since larger ones only tile more."""
    defaults = {
        "default_size": [64, 64],
        "min_size": 64,
        "max_size": 128,
        "default_steps": 20,
        "default_guidance": 7.5,
    }
    (folder / "diffusion_preview.json").write_text(json.dumps({"defaults": defaults}, indent=1))


def finish(
    folder: Path, skip_eval: bool = False, eval_limit: int | None = None, card_only: bool = False
) -> int:
    """Evaluate the saved (best) checkpoint through the diffusers backend and write its card
    (``card_only``: with the evaluation already recorded in ``evaluation.json``, if any)."""
    training = json.loads((folder / "training.json").read_text())
    write_model_defaults(folder)
    evaluation = None
    recorded = folder / "evaluation.json"
    if card_only and recorded.is_file():
        evaluation = json.loads(recorded.read_text())
    elif not skip_eval and not card_only:
        evaluation = json.loads(final_evaluation(folder, eval_limit))
        (folder / "evaluation.json").write_text(json.dumps(evaluation, indent=1))
    write_card(folder, training, evaluation, folder / "learning_curve.jsonl")
    print(json.dumps({"training": training, "evaluation": evaluation}, indent=1))
    return 0


@torch.no_grad()
def check_reconstructions(vae, latents: torch.Tensor, scenes: list) -> dict:
    """How often the judge names the drawn scene from the autoencoder's reconstruction: the
    ceiling for what the whole model can score."""
    decoded = vae.decode(latents.float() / vae.config.scaling_factor).sample
    pixels = decoded.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()
    result = shapes_eval.score(scenes, list(pixels))
    return {"images": result.images, **result.summary()}


def final_evaluation(folder: Path, limit: int | None = None) -> str:
    """The evaluation module's JSON, for the saved folder, through the diffusers backend."""
    import contextlib
    import io

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        limit_args = ["--limit", str(limit)] if limit else []
        shapes_eval.main(["--model", str(folder), "--json", *limit_args])
    return captured.getvalue().strip().splitlines()[-1]


def size_steps(args, unet, text_encoder, tokenizer, scheduler, latents, scenes) -> int:
    """Denoiser steps that fit ``--minutes``, from the speed of a few throwaway steps."""
    import copy

    trial_unet, trial_text = copy.deepcopy(unet), copy.deepcopy(text_encoder)
    began = time.monotonic()
    train_denoiser(
        trial_unet, trial_text, tokenizer, scheduler, latents, scenes, 10, 0, args.batch,
        log=lambda row: None,
    )  # fmt: skip
    per_step = (time.monotonic() - began) / 10
    evals_share = 1.1  # the learning-curve evaluations take about a tenth more
    steps = max(100, int(args.minutes * 60 / per_step / evals_share))
    print(f"--minutes {args.minutes}: {per_step:.2f} s per step, so --steps {steps}", flush=True)
    return steps


if __name__ == "__main__":
    raise SystemExit(main())
