"""The parts of the bundled shapes model, built untrained: a word-level CLIP tokenizer, a small
CLIP text encoder, a small AutoencoderKL, a small UNet and the noise schedule, assembled as a
standard ``StableDiffusionPipeline`` so any diffusers code path can load and run it.

Why these choices:

- 64 px pictures, 16 x 16 x 4 latents (the VAE downsamples 4x): a shape spans a handful of latent
  pixels, so the latent-to-RGB preview still shows it, and the UNet works on 256 positions.
- Attention at 8 x 8 and 4 x 4 in the UNet from scratch (attention at 16 x 16 from the start
  tripled the training cost on this CPU). ``make_unet(attention_16=True)`` adds self- and
  cross-attention at the 16 x 16 level, where a shape's outline and place are decided (issue
  #26); ``widen_unet`` grows a trained UNet into it, keeping every trained weight.
- v-prediction on the cosine schedule (Nichol & Dhariwal 2021, made for small images; every
  diffusers scheduler supports it). Its terminal signal-to-noise ratio is nearly zero, so the
  first steps see pure noise, as at sampling time, and the model learns to take the background
  colour from the prompt, not from the noise; and x0 = sqrt(a) x - sqrt(1-a) v stays well
  conditioned at high noise, so the earliest step previews are already meaningful.
- Euler with "trailing" timesteps: 20 steps start from the noisiest level.
"""

from __future__ import annotations

import json
from pathlib import Path

PROMPT_TOKENS = 16  # <start>, up to 14 words, <end>; the longest grammar prompt has 11 words
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _merge(pieces: list[str], pair: tuple[str, str]) -> list[str]:
    out, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out


def tokenizer_files(folder: Path, words: tuple[str, ...]) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` of a CLIP BPE tokenizer in which every grammar
    word is one token. Each word is run through the merges so far, as the tokenizer will (lowest
    rank first), and new merges join what is left, left to right; the fast tokenizer wants
    every intermediate piece in the vocabulary. Other words fall apart into letters and pieces."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>", *LETTERS, *(c + "</w>" for c in LETTERS)]
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            known = [pair for pair in zip(pieces, pieces[1:], strict=False) if pair in ranks]
            if known:
                pair = min(known, key=ranks.__getitem__)
            else:
                pair = (pieces[0], pieces[1])
                ranks[pair] = len(ranks)
                tokens.append(pair[0] + pair[1])
            pieces = _merge(pieces, pair)
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in ranks))
    return folder


def load_tokenizer(folder: Path):
    """The saved tokenizer as a plain fast tokenizer: transformers' ``CLIPTokenizer`` replaces
    the normalizer of ``tokenizer.json`` with its own, which would drop the synonyms and the
    punctuation rule of ``bundled.shapes.words``."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(folder)


def mark_fast_tokenizer(folder: Path) -> None:
    """Name the saved tokenizer ``PreTrainedTokenizerFast`` in ``folder``'s ``model_index.json``
    and tokenizer config: transformers 5 saves it as ``TokenizersBackend``, which transformers
    4 does not know, and ``CLIPTokenizer`` would drop the normalizer of ``tokenizer.json``."""
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["tokenizer"] = ["transformers", "PreTrainedTokenizerFast"]
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    config_path = folder / "tokenizer" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def make_tokenizer(folder: Path, words: tuple[str, ...]):
    """A CLIP BPE tokenizer in which every grammar word is one token, reading prompts through
    ``words.tokenizer_normalizer`` (synonyms, punctuation), saved in ``folder / "fast"``."""
    from transformers import CLIPTokenizer

    from gradio_diffusion_preview.bundled.shapes.words import tokenizer_normalizer

    clip = CLIPTokenizer.from_pretrained(
        tokenizer_files(folder, words), pad_token="<|endoftext|>", model_max_length=PROMPT_TOKENS
    )
    clip.save_pretrained(folder / "fast")
    spec = json.loads((folder / "fast" / "tokenizer.json").read_text())
    spec["normalizer"] = tokenizer_normalizer()
    (folder / "fast" / "tokenizer.json").write_text(json.dumps(spec, indent=2))
    config = json.loads((folder / "fast" / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (folder / "fast" / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    tokenizer = load_tokenizer(folder / "fast")
    for word in words:
        ids = tokenizer(word).input_ids
        assert len(ids) == 3, f"{word!r} is not one token: {tokenizer.convert_ids_to_tokens(ids)}"
    return tokenizer


def make_text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_attention_heads=4,
        num_hidden_layers=3,
        max_position_embeddings=PROMPT_TOKENS,
        projection_dim=128,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_act="gelu",
    )
    return CLIPTextModel(config)


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32, 64),
        norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        sample_size=64,
        mid_block_add_attention=False,
    )


def make_unet(attention_16: bool = False):
    """The UNet; ``attention_16``: with attention (self and to the prompt) at 16 x 16 too."""
    from diffusers import UNet2DConditionModel

    first_down = "CrossAttnDownBlock2D" if attention_16 else "DownBlock2D"
    last_up = "CrossAttnUpBlock2D" if attention_16 else "UpBlock2D"
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64, 128),
        down_block_types=(first_down, "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", last_up),
        cross_attention_dim=128,
        attention_head_dim=4,  # diffusers' name for the number of heads
        norm_num_groups=32,
    )


def widen_unet(trained):
    """A UNet with attention at 16 x 16 holding every weight of ``trained`` (one without it);
    the new attention layers' output projections start at zero, so the widened UNet predicts
    exactly what ``trained`` did and training only has to learn what the new layers add."""
    import torch

    widened = make_unet(attention_16=True)
    missing, unexpected = widened.load_state_dict(trained.state_dict(), strict=False)
    new_layers = ("down_blocks.0.attentions.", "up_blocks.2.attentions.")
    stray = [key for key in missing if not key.startswith(new_layers)]
    if unexpected or stray:
        raise ValueError(f"weights that do not fit: {unexpected or stray}")
    with torch.no_grad():
        for name, module in widened.named_modules():
            if name.startswith(new_layers) and name.endswith("proj_out"):
                module.weight.zero_()
                module.bias.zero_()
    return widened


def make_scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        steps_offset=1,  # unused with trailing spacing; diffusers warns when it is not 1
    )


def assemble(tokenizer, text_encoder, vae, unet, scheduler=None):
    """The parts as a ``StableDiffusionPipeline`` (no safety checker, no image encoder)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler or make_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
