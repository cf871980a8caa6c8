"""Tiny random-weight pipelines of the text-to-image families the installed diffusers has, built
offline from the configs diffusers' own tests use, saved, and loaded back like any model.

Source of every config: the ``get_dummy_components()`` of each pipeline's test file in
huggingface/diffusers at commit 58eb52c0803ea9af3abec60841c2a093bdf1f951 (``SOURCE`` below;
the path of each test file is in ``FAMILIES``), except where a family names another commit (the
version of that test file that could be read here: Kandinsky 3, HunyuanDiT, CogView3-Plus). The
denoisers and VAEs are those configs as written. What differs, and why:

- Tokenizers: diffusers' tests download them (``hf-internal-testing/tiny-random-clip``,
  ``tiny-random-t5``, ``dummy-gemma``, ``tiny-random-Qwen2VLForConditionalGeneration``), which
  cannot be done offline. ``byte_tokenizer`` builds one locally instead: a ``tokenizers`` BPE with
  no merges over the 256 byte-level characters (every byte a token) plus the special tokens the
  pipeline's prompt template uses, wrapped in transformers' ``PreTrainedTokenizerFast``.
- Text encoders given by hub name in the tests (``AutoConfig.from_pretrained(
  "hf-internal-testing/tiny-random-t5")``, ``UMT5EncoderModel.from_pretrained(...)``) are built
  from an equivalent tiny config (``TINY_T5``); every text encoder's ``vocab_size`` is raised to
  at least the local tokenizer's size where the test's is smaller (Sana's Gemma2 has 8).
- Lumina2's, Lumina's and HunyuanDiT's VAEs have four blocks (8x downsampling) instead of the
  test's one, and Kandinsky 3's movq four instead of two: those pipelines assume 8x, so with the
  test's VAE a 64 px request makes an 8 px image (Kandinsky 3: 16 px; HunyuanDiT fails, its
  rotary grid computed for 8x).
- HunyuanDiT's BERT encoder (``hf-internal-testing/tiny-random-BertModel``) is built from its
  config reproduced (``TINY_BERT``).
- CogView3-Plus's ``pos_embed_max_size`` is 16 instead of 8: 8 patches allow at most 32 px.
- PixArt's one-block VAE is kept as written: PixArt reads its scale from the VAE, so the latent
  is simply the size of the image.

The families diffusers' auto text-to-image mapping has but that are not built here are listed in
``NOT_BUILT`` with the reason; the tests skip them with it, and the docs table says so.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = "huggingface/diffusers@58eb52c0803ea9af3abec60841c2a093bdf1f951"
BUILD_VERSION = "3"

# hf-internal-testing/tiny-random-t5's encoder, reproduced (its config cannot be downloaded here).
TINY_T5 = dict(
    d_model=32,
    d_ff=37,
    d_kv=8,
    num_heads=4,
    num_layers=5,
    relative_attention_num_buckets=8,
    vocab_size=1103,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
    dropout_rate=0.0,
)

# hf-internal-testing/tiny-random-BertModel's config, reproduced (HunyuanDiT's first encoder).
TINY_BERT = dict(
    hidden_size=32,
    num_hidden_layers=5,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_act="gelu",
    max_position_embeddings=512,
    type_vocab_size=16,
)
TINY_BERT_VOCAB = 1124

BYTE_ORDER_SPECIALS = ("<pad>", "</s>", "<unk>", "<s>")
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def byte_tokenizer(
    max_length: int = 77, extra_specials: tuple[str, ...] = (), begin_with_bos: bool = False
):
    """A byte-level tokenizer made here: ids 0-3 are pad, eos, unk, bos; then any
    ``extra_specials``; then one token per byte (no merges, so any text tokenizes). With
    ``begin_with_bos`` every text starts with ``<s>`` (as GLM's starts with its prefix tokens),
    so an empty prompt is not zero tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [*BYTE_ORDER_SPECIALS, *extra_specials]
    vocab = {token: index for index, token in enumerate(specials)}
    for char in pre_tokenizers.ByteLevel.alphabet():
        vocab.setdefault(char, len(vocab))
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    if begin_with_bos:
        core.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 3)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=max_length,
        additional_special_tokens=list(extra_specials),
    )
    return tokenizer


def _clip_tokenizer(folder: Path):
    """The CLIP tokenizer tiny.py builds (byte vocabulary, model_max_length 77)."""
    from gradio_diffusion_preview.backends.diffusers.tiny import _make_tokenizer

    return _make_tokenizer(folder)[0]


def _clip_config(**overrides):
    from transformers import CLIPTextConfig

    fields = dict(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        pad_token_id=1,
        vocab_size=1000,
        hidden_act="gelu",
        projection_dim=32,
    )
    fields.update(overrides)
    return CLIPTextConfig(**fields)


def _t5_encoder():
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**TINY_T5)).eval()


def _small_vae(latent_channels: int, **extra):
    """The one-block AutoencoderKL of the SD3, Flux, Chroma and Lumina2 tests (no downsampling)."""
    from diffusers import AutoencoderKL

    fields = dict(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    fields.update(extra)
    return AutoencoderKL(**fields)


def _two_block_vae(latent_channels: int = 4, **extra):
    """The two-block AutoencoderKL (2x downsampling) of the AuraFlow, CogView4, Z-Image tests."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=latent_channels,
        sample_size=32,
        **extra,
    )


def _sd3(tmp: Path, pag: bool = False):
    """SD3; with ``pag``, StableDiffusion3PAGPipeline from test_pag_sd3.py (the same components
    with a two-layer transformer)."""
    import diffusers
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from transformers import CLIPTextModelWithProjection

    Pipeline = diffusers.StableDiffusion3PAGPipeline if pag else diffusers.StableDiffusion3Pipeline
    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=1,
        in_channels=4,
        num_layers=2 if pag else 1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=64,
        out_channels=4,
    )
    return Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=CLIPTextModelWithProjection(_clip_config()).eval(),
        text_encoder_2=CLIPTextModelWithProjection(_clip_config()).eval(),
        text_encoder_3=_t5_encoder(),
        tokenizer=_clip_tokenizer(tmp / "clip"),
        tokenizer_2=_clip_tokenizer(tmp / "clip2"),
        tokenizer_3=byte_tokenizer(),
        transformer=transformer,
        vae=_small_vae(4),
    )


def _flux(tmp: Path):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=CLIPTextModel(_clip_config()).eval(),
        text_encoder_2=_t5_encoder(),
        tokenizer=_clip_tokenizer(tmp / "clip"),
        tokenizer_2=byte_tokenizer(),
        transformer=transformer,
        vae=_small_vae(1),
    )


def _flux_kontext(tmp: Path):
    """FluxKontextPipeline from test_pipeline_flux_kontext.py: the Flux test's components (the
    same transformer, encoders and one-block VAE), no image encoder."""
    from diffusers import FluxKontextPipeline

    return FluxKontextPipeline(**_flux(tmp).components)


def _chroma(tmp: Path):
    import torch
    from diffusers import ChromaPipeline, ChromaTransformer2DModel, FlowMatchEulerDiscreteScheduler

    torch.manual_seed(0)
    transformer = ChromaTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        axes_dims_rope=[4, 4, 8],
        approximator_hidden_dim=32,
        approximator_layers=1,
        approximator_num_channels=16,
    )
    return ChromaPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=_t5_encoder(),
        tokenizer=byte_tokenizer(),
        transformer=transformer,
        vae=_small_vae(1),
    )


def _lumina2(tmp: Path):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, Lumina2Pipeline
    from diffusers import Lumina2Transformer2DModel as Transformer
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(0)
    transformer = Transformer(
        sample_size=4,
        patch_size=2,
        in_channels=4,
        hidden_size=8,
        num_layers=2,
        num_attention_heads=1,
        num_kv_heads=1,
        multiple_of=16,
        ffn_dim_multiplier=None,
        norm_eps=1e-5,
        scaling_factor=1.0,
        axes_dim_rope=[4, 2, 2],
        cap_feat_dim=8,
    )
    config = Gemma2Config(
        head_dim=4,
        hidden_size=8,
        intermediate_size=8,
        num_attention_heads=2,
        num_hidden_layers=2,
        num_key_value_heads=2,
        sliding_window=2,
    )
    # The test's one-block VAE does not downsample, but Lumina2Pipeline assumes 8x (it sets
    # vae_scale_factor = 8), so a 64 px request made 8 px images: four blocks here, as in the
    # released model's VAE, so the size asked is the size made.
    vae = _small_vae(
        4,
        block_out_channels=(4, 4, 4, 4),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    return Lumina2Pipeline(
        transformer=transformer,
        vae=vae.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=Gemma2Model(config).eval(),
        tokenizer=byte_tokenizer(256),
    )


def _qwenimage(tmp: Path):
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    z_dim = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z_dim * 6,
        z_dim=z_dim,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
        hidden_size=16,
        vocab_size=152064,
        vision_end_token_id=151653,
        vision_start_token_id=151652,
        vision_token_id=151654,
    )
    return QwenImagePipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=Qwen2_5_VLForConditionalGeneration(config).eval(),
        tokenizer=byte_tokenizer(1024, QWEN_SPECIALS),
    )


def _zimage(tmp: Path):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline
    from diffusers import ZImageTransformer2DModel as Transformer
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    transformer = Transformer(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=16,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[8, 4, 4],
        axes_lens=[256, 32, 32],
    )
    with torch.no_grad():  # created with torch.empty; the test fixes them the same way
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token.data))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token.data))
    vae = _two_block_vae(16, norm_num_groups=32, scaling_factor=0.3611, shift_factor=0.1159)
    config = Qwen3Config(
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=512,
    )
    return ZImagePipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=Qwen3Model(config).eval(),
        tokenizer=_chat_tokenizer(),
    )


def _auraflow(tmp: Path):
    import torch
    from diffusers import (
        AuraFlowPipeline,
        AuraFlowTransformer2DModel,
        FlowMatchEulerDiscreteScheduler,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    transformer = AuraFlowTransformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=4,
        num_mmdit_layers=1,
        num_single_dit_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        out_channels=4,
        pos_embed_max_size=256,
    )
    return AuraFlowPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=UMT5EncoderModel(UMT5Config(**TINY_T5)).eval(),
        tokenizer=byte_tokenizer(),
        transformer=transformer,
        vae=_two_block_vae(4),
    )


def _sana(tmp: Path, pag: bool = False):
    """Sana; with ``pag``, SanaPAGPipeline from test_pag_sana.py: the same transformer with two
    layers, PAG on the pipeline's default (``transformer_blocks.0``). Its text encoder is
    Sana's own test's (a ``Gemma2Model``, 8 wide): the PAG test's ``Gemma2ForCausalLM`` hands
    its logits over an 8-token vocabulary to the 8-channel caption projection, which works only
    with the 8-token tokenizer it downloads."""
    import torch
    from diffusers import (
        AutoencoderDC,
        FlowMatchEulerDiscreteScheduler,
        SanaPAGPipeline,
        SanaPipeline,
    )
    from diffusers import SanaTransformer2DModel as Transformer
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(0)
    transformer = Transformer(
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=2 if pag else 1,
        num_attention_heads=2,
        attention_head_dim=4,
        num_cross_attention_heads=2,
        cross_attention_head_dim=4,
        cross_attention_dim=8,
        caption_channels=8,
        sample_size=32,
    )
    vae = AutoencoderDC(
        in_channels=3,
        latent_channels=4,
        attention_head_dim=2,
        encoder_block_types=("ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        encoder_qkv_multiscales=((), (5,)),
        decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1),
        decoder_layers_per_block=[1, 1],
        downsample_block_type="conv",
        upsample_block_type="interpolate",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=0.41407,
    )
    tokenizer = byte_tokenizer(300)
    config = Gemma2Config(
        head_dim=16,
        hidden_size=8,
        initializer_range=0.02,
        intermediate_size=64,
        max_position_embeddings=8192,
        model_type="gemma2",
        num_attention_heads=2,
        num_hidden_layers=1,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),  # the test's 8 is for its downloaded dummy tokenizer
        attn_implementation="eager",
    )
    return (SanaPAGPipeline if pag else SanaPipeline)(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=Gemma2Model(config).eval(),
        tokenizer=tokenizer,
    )


def _lcm(tmp: Path):
    import torch
    from diffusers import (
        AutoencoderKL,
        LatentConsistencyModelPipeline,
        LCMScheduler,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
        time_cond_proj_dim=32,
    )
    scheduler = LCMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    config = _clip_config(intermediate_size=64, num_attention_heads=8, num_hidden_layers=3)
    return LatentConsistencyModelPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=CLIPTextModel(config).eval(),
        tokenizer=_clip_tokenizer(tmp / "clip"),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _lumina(tmp: Path):
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, LuminaPipeline
    from diffusers import LuminaNextDiT2DModel as Transformer
    from transformers import GemmaConfig, GemmaForCausalLM

    torch.manual_seed(0)
    transformer = Transformer(
        sample_size=4,
        patch_size=2,
        in_channels=4,
        hidden_size=4,
        num_layers=2,
        num_attention_heads=1,
        num_kv_heads=1,
        multiple_of=16,
        ffn_dim_multiplier=None,
        norm_eps=1e-5,
        learn_sigma=True,
        qk_norm=True,
        cross_attention_dim=8,
        scaling_factor=1.0,
    )
    # The test's AutoencoderKL() has one block (no downsampling); LuminaPipeline assumes 8x, as
    # Lumina2's does: four blocks here, so the size asked is the size made.
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8,
    )
    config = GemmaConfig(
        head_dim=2,
        hidden_size=8,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        num_key_value_heads=4,
    )
    return LuminaPipeline(
        transformer=transformer.eval(),
        vae=vae.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=GemmaForCausalLM(config).eval(),
        tokenizer=byte_tokenizer(256),
    )


def _cogview4(tmp: Path):
    import torch
    from diffusers import (
        CogView4Pipeline,
        CogView4Transformer2DModel,
        FlowMatchEulerDiscreteScheduler,
    )
    from transformers import GlmConfig, GlmForCausalLM

    torch.manual_seed(0)
    transformer = CogView4Transformer2DModel(
        patch_size=2,
        in_channels=4,
        num_layers=2,
        attention_head_dim=4,
        num_attention_heads=4,
        out_channels=4,
        text_embed_dim=32,
        time_embed_dim=8,
        condition_dim=4,
    )
    vae = _two_block_vae(4)
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_shift=0.25,
        max_shift=0.75,
        base_image_seq_len=256,
        use_dynamic_shifting=True,
        time_shift_type="linear",
    )
    config = GlmConfig(
        hidden_size=32, intermediate_size=8, num_hidden_layers=2, num_attention_heads=4, head_dim=8
    )
    return CogView4Pipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=GlmForCausalLM(config).eval(),
        tokenizer=byte_tokenizer(1024, begin_with_bos=True),
    )


def _kandinsky3(tmp: Path):
    """Kandinsky 3: a VQ "movq" decoder instead of a VAE, a DDPM scheduler, and a denoising loop
    that ignores ``_interrupt`` (finish early is the backend's)."""
    import torch
    from diffusers import DDPMScheduler, Kandinsky3Pipeline, Kandinsky3UNet, VQModel

    torch.manual_seed(0)
    unet = Kandinsky3UNet(
        in_channels=4,
        time_embedding_dim=4,
        groups=2,
        attention_head_dim=4,
        layers_per_block=3,
        block_out_channels=(32, 64),
        cross_attention_dim=4,
        encoder_hid_dim=32,
    )
    scheduler = DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        thresholding=False,
    )
    torch.manual_seed(0)
    # The test's movq has two blocks (2x); the pipeline assumes 8x (downscale_height_and_width),
    # so a 64 px request made 16 px: four blocks here, the first two as the test's.
    movq = VQModel(
        block_out_channels=[32, 64, 64, 64],
        down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"]
        + ["DownEncoderBlock2D"] * 2,
        in_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        out_channels=3,
        up_block_types=["UpDecoderBlock2D"] * 2 + ["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
        vq_embed_dim=4,
    )
    torch.manual_seed(0)
    return Kandinsky3Pipeline(
        unet=unet,
        scheduler=scheduler,
        movq=movq,
        text_encoder=_t5_encoder(),
        tokenizer=byte_tokenizer(),
    )


def _hunyuandit(tmp: Path, pag: bool = False):
    """HunyuanDiT; with ``pag``, HunyuanDiTPAGPipeline from test_pag_hunyuan_dit.py (the same
    components, PAG on block 1)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDPMScheduler,
        HunyuanDiT2DModel,
        HunyuanDiTPAGPipeline,
        HunyuanDiTPipeline,
    )
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    transformer = HunyuanDiT2DModel(
        sample_size=16,
        num_layers=2,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=3,
        in_channels=4,
        cross_attention_dim=32,
        cross_attention_dim_t5=32,
        pooled_projection_dim=16,
        hidden_size=24,
        activation_fn="gelu-approximate",
    )
    torch.manual_seed(0)
    # The test's AutoencoderKL() has one block; the pipeline's rotary grid assumes 8x
    # (height // 8 // patch_size): four blocks here, as for Lumina.
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8,
    )
    tokenizer = byte_tokenizer()
    bert = BertConfig(**TINY_BERT, vocab_size=max(TINY_BERT_VOCAB, len(tokenizer)))
    # PAG on block 1: the test's pag_applied_layers=[1] is refused by 0.42.1 (not a string);
    # the pipeline's default "blocks.1" is that block.
    return (HunyuanDiTPAGPipeline if pag else HunyuanDiTPipeline)(
        transformer=transformer.eval(),
        vae=vae.eval(),
        scheduler=DDPMScheduler(),
        text_encoder=BertModel(bert).eval(),
        tokenizer=tokenizer,
        text_encoder_2=_t5_encoder(),
        tokenizer_2=byte_tokenizer(256),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _cogview3plus(tmp: Path):
    import torch
    from diffusers import (
        AutoencoderKL,
        CogVideoXDDIMScheduler,
        CogView3PlusPipeline,
        CogView3PlusTransformer2DModel,
    )

    torch.manual_seed(0)
    transformer = CogView3PlusTransformer2DModel(
        patch_size=2,
        in_channels=4,
        num_layers=1,
        attention_head_dim=4,
        num_attention_heads=2,
        out_channels=4,
        text_embed_dim=32,
        time_embed_dim=8,
        condition_dim=2,
        pos_embed_max_size=16,  # the test's 8 patches make at most 32 px; 64 px needs 16
        sample_size=8,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=128,
    )
    torch.manual_seed(0)
    return CogView3PlusPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=CogVideoXDDIMScheduler(),
        text_encoder=_t5_encoder(),
        tokenizer=byte_tokenizer(),
    )


def _flux2_klein(tmp: Path):
    """FLUX.2 [klein]: a Qwen3 causal LM whose hidden states 9, 18 and 27 are the prompt
    embedding (the pipeline's default ``text_encoder_out_layers``), so 27 layers here where the
    test has 2 and passes ``text_encoder_out_layers=(1,)``, which a plain run does not; and the
    transformer's ``joint_attention_dim`` is those three layers' 3 x 16 = 48 (the test's 16 is
    its one layer's)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=48,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=False,
    )
    config = Qwen3Config(
        intermediate_size=16,
        hidden_size=16,
        num_hidden_layers=27,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    text_encoder = Qwen3ForCausalLM(config).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLFlux2(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    return Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=_chat_tokenizer(),
        transformer=transformer,
        vae=vae,
    )


def _flux2(tmp: Path):
    """FLUX.2 [dev]: a Mistral 3 encoder whose hidden states 10, 20 and 30 are the prompt
    embedding (the pipeline's default ``text_encoder_out_layers``), so 30 text layers here
    where the test has 1 and passes ``(1,)``, and ``joint_attention_dim`` 3 x 16 = 48 (the
    test's 16 is one layer's). The test downloads Mistral's processor; here the byte tokenizer
    with a chat template that joins each message's text parts (the pipeline sends the system
    message and the prompt as lists of parts, and pads to 512 tokens)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Pipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    torch.manual_seed(0)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=48,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
    )
    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": 32000,
            "hidden_size": 16,
            "intermediate_size": 37,
            "max_position_embeddings": 512,
            "num_attention_heads": 4,
            "num_hidden_layers": 30,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000000.0,
            "sliding_window": None,
            "bos_token_id": 2,
            "eos_token_id": 3,
            "pad_token_id": 4,
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 37,
            "image_size": 30,
            "patch_size": 6,
            "num_channels": 3,
        },
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=4,
        model_dtype="mistral3",
        image_seq_length=4,
        vision_feature_layer=-1,
        image_token_index=1,
    )
    torch.manual_seed(0)
    text_encoder = Mistral3ForConditionalGeneration(config).eval()
    tokenizer = byte_tokenizer(512)
    tokenizer.chat_template = (
        "{% for m in messages %}[{{ m['role'] }}]{% for part in m['content'] %}"
        "{{ part['text'] }}{% endfor %}\n{% endfor %}"
    )
    torch.manual_seed(0)
    vae = AutoencoderKLFlux2(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    return Flux2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
    )


def _ovis(tmp: Path):
    """Ovis-Image: a Qwen3 encoder; the test downloads Qwen2-VL's tokenizer, here the byte
    tokenizer with Qwen's special tokens and a chat template (the pipeline drops the first 28
    tokens, its own prefix, whatever they are)."""
    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        OvisImagePipeline,
        OvisImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    transformer = OvisImageTransformer2DModel(
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        axes_dims_rope=(4, 4, 8),
    )
    torch.manual_seed(0)
    vae = _small_vae(1)
    tokenizer = _chat_tokenizer()
    torch.manual_seed(0)
    text_encoder = Qwen3Model(
        Qwen3Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            vocab_size=len(tokenizer) + 4,
            max_position_embeddings=512,
        )
    ).eval()
    return OvisImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def _krea2(tmp: Path):
    """Krea 2: a Qwen3-VL encoder (the test's config) and the Qwen-Image VAE with four latent
    channels; the test downloads Qwen2-VL's tokenizer, here the byte tokenizer with Qwen's
    special tokens (the pipeline writes its chat template into the text itself). The byte
    tokenizer is not a ``Qwen2Tokenizer``: the pipeline's suffix of five tokens is five here
    only by its special tokens, so the prompt embedding's length can differ from a release's."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        Krea2Pipeline,
        Krea2Transformer2DModel,
    )
    from transformers import Qwen3VLConfig, Qwen3VLModel

    torch.manual_seed(0)
    transformer = Krea2Transformer2DModel(
        in_channels=16,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=32,
        timestep_embed_dim=8,
        text_hidden_dim=16,
        num_text_layers=3,
        text_num_attention_heads=2,
        text_num_key_value_heads=1,
        text_intermediate_size=16,
        num_layerwise_text_blocks=1,
        num_refiner_text_blocks=1,
        axes_dims_rope=(4, 2, 2),
        rope_theta=1000.0,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(
        base_dim=4 * 6,
        z_dim=4,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=6400,
    )
    torch.manual_seed(0)
    config = Qwen3VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "head_dim": 8,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
        vocab_size=152064,
    )
    return Krea2Pipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=Qwen3VLModel(config).eval(),
        tokenizer=_chat_tokenizer(),
        text_encoder_select_layers=(0, 1, 2),
    )


def _ideogram4(tmp: Path):
    """Ideogram 4: diffusers has no pipeline test for it; its tiny components are those of
    ``tests/lora/test_lora_layers_ideogram4.py`` (``get_dummy_components``, without the LoRA
    configs): two transformers (conditional and unconditional), a one-block FLUX.2 VAE and a
    Qwen3-VL encoder deep enough for the pipeline's tapped layers. The test downloads Qwen2-VL's
    tokenizer; here the byte tokenizer with Qwen's chat tokens (the pipeline applies the chat
    template)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Ideogram4Pipeline,
        Ideogram4Transformer2DModel,
    )
    from diffusers.pipelines.ideogram4.pipeline_ideogram4 import QWEN3_VL_ACTIVATION_LAYERS
    from transformers import Qwen3VLConfig, Qwen3VLModel

    text_hidden = 8
    transformer_kwargs = dict(
        in_channels=16,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        intermediate_size=32,
        adaln_dim=16,
        llm_features_dim=len(QWEN3_VL_ACTIVATION_LAYERS) * text_hidden,
        rope_theta=10_000,
        mrope_section=(2, 1, 1),
        norm_eps=1e-5,
    )
    torch.manual_seed(0)
    transformer = Ideogram4Transformer2DModel(**transformer_kwargs)
    unconditional_transformer = Ideogram4Transformer2DModel(**transformer_kwargs)
    torch.manual_seed(0)
    vae = AutoencoderKLFlux2(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(8,),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=1,
        sample_size=32,
        patch_size=(2, 2),
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    torch.manual_seed(0)
    config = Qwen3VLConfig(
        text_config={
            "hidden_size": text_hidden,
            "num_hidden_layers": max(QWEN3_VL_ACTIVATION_LAYERS) + 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 16,
            "head_dim": 8,
            "vocab_size": 151936,
            "max_position_embeddings": 256,
            "rope_theta": 10_000.0,
        },
        vision_config={
            "hidden_size": 8,
            "depth": 2,
            "num_heads": 2,
            "intermediate_size": 16,
            "out_hidden_size": text_hidden,
            "patch_size": 14,
        },
    )
    return Ideogram4Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=Qwen3VLModel(config).eval(),
        tokenizer=_chat_tokenizer(),
        transformer=transformer,
        unconditional_transformer=unconditional_transformer,
    )


def _prx(tmp: Path):
    """PRX: a T5Gemma encoder (the test's config, its vocabulary the local tokenizer's) and the
    one-block VAE. The test downloads ``hf-internal-testing/dummy-gemma``'s tokenizer; here the
    byte tokenizer, with the test's ``model_max_length`` of 64. The pipeline cleans every prompt
    with ``ftfy``, so running it needs ftfy installed (the diffusers extra has it). The
    test's text encoder does not load back (``UNLOADABLE_FAMILIES``)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.transformer_prx import PRXTransformer2DModel
    from diffusers.pipelines.prx.pipeline_prx import PRXPipeline
    from transformers.models.t5gemma.configuration_t5gemma import (
        T5GemmaConfig,
        T5GemmaModuleConfig,
    )
    from transformers.models.t5gemma.modeling_t5gemma import T5GemmaEncoder

    torch.manual_seed(0)
    transformer = PRXTransformer2DModel(
        patch_size=1,
        in_channels=4,
        context_in_dim=8,
        hidden_size=8,
        mlp_ratio=2.0,
        num_heads=2,
        depth=1,
        axes_dim=[2, 2],
    )
    torch.manual_seed(0)
    vae = _small_vae(4, shift_factor=0.0, scaling_factor=1.0).eval()
    tokenizer = byte_tokenizer(64)
    torch.manual_seed(0)
    encoder_params = dict(
        vocab_size=len(tokenizer),
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=4,
        max_position_embeddings=64,
        layer_types=["full_attention"],
        attention_bias=False,
        attention_dropout=0.0,
        dropout_rate=0.0,
        hidden_activation="gelu_pytorch_tanh",
        rms_norm_eps=1e-06,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
        query_pre_attn_scalar=4,
        rope_theta=10000.0,
        sliding_window=4096,
    )
    encoder_config = T5GemmaModuleConfig(**encoder_params)
    config = T5GemmaConfig(encoder=encoder_config, is_encoder_decoder=False, **encoder_params)
    return PRXPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=T5GemmaEncoder(config.encoder).eval(),
        tokenizer=tokenizer,
    )


def _cascade(tmp: Path):
    """Stable Cascade, combined (prior + decoder + Paella VQ-GAN): test_stable_cascade_combined.py's
    components, with tiny.py's CLIP tokenizer for the test's downloaded tiny-random-clip."""
    import torch
    from diffusers import DDPMWuerstchenScheduler, StableCascadeCombinedPipeline
    from diffusers.models import StableCascadeUNet
    from diffusers.pipelines.deprecated.wuerstchen import PaellaVQModel
    from transformers import CLIPTextModelWithProjection

    def text_encoder():
        torch.manual_seed(0)
        return CLIPTextModelWithProjection(_clip_config(projection_dim=32)).eval()

    torch.manual_seed(0)
    prior = StableCascadeUNet(
        conditioning_dim=128,
        block_out_channels=(128, 128),
        num_attention_heads=(2, 2),
        down_num_layers_per_block=(1, 1),
        up_num_layers_per_block=(1, 1),
        clip_image_in_channels=768,
        switch_level=(False,),
        clip_text_in_channels=32,
        clip_text_pooled_in_channels=32,
    ).eval()
    torch.manual_seed(0)
    vqgan = PaellaVQModel(bottleneck_blocks=1, num_vq_embeddings=2).eval()
    torch.manual_seed(0)
    attention = ("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock")
    decoder = StableCascadeUNet(
        in_channels=4,
        out_channels=4,
        conditioning_dim=128,
        block_out_channels=(16, 32, 64, 128),
        num_attention_heads=(-1, -1, 1, 2),
        down_num_layers_per_block=(1, 1, 1, 1),
        up_num_layers_per_block=(1, 1, 1, 1),
        down_blocks_repeat_mappers=(1, 1, 1, 1),
        up_blocks_repeat_mappers=(3, 3, 2, 2),
        block_types_per_layer=(attention[:2], attention[:2], attention, attention),
        switch_level=None,
        clip_text_pooled_in_channels=32,
        dropout=(0.1, 0.1, 0.1, 0.1),
    ).eval()
    scheduler = DDPMWuerstchenScheduler()
    return StableCascadeCombinedPipeline(
        text_encoder=text_encoder(),
        tokenizer=_clip_tokenizer(tmp / "tokenizer"),
        decoder=decoder,
        scheduler=scheduler,
        vqgan=vqgan,
        prior_text_encoder=text_encoder(),
        prior_tokenizer=_clip_tokenizer(tmp / "prior-tokenizer"),
        prior_prior=prior,
        prior_scheduler=scheduler,
        prior_feature_extractor=None,
        prior_image_encoder=None,
    )


def _kandinsky22(tmp: Path):
    """Kandinsky 2.2, combined: the prior of test_kandinsky_prior.py (a PriorTransformer over a
    CLIP text encoder, a CLIP image encoder and image processor, an UnCLIP scheduler) and the
    decoder of test_kandinsky.py (an image-embedding UNet, DDIM, a two-block movq), as
    test_kandinsky_combined.py joins them; the CLIP tokenizer is tiny.py's local one."""
    import torch
    from diffusers import (
        DDIMScheduler,
        KandinskyV22CombinedPipeline,
        PriorTransformer,
        UnCLIPScheduler,
        UNet2DConditionModel,
        VQModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(0)
    prior = PriorTransformer(
        num_attention_heads=2, attention_head_dim=12, embedding_dim=32, num_layers=1
    )
    # the test's: clip_std starts at 0, which would make every image embedding 0
    prior.clip_std = torch.nn.Parameter(torch.ones(prior.clip_std.shape))
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            image_size=224,
            projection_dim=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_channels=3,
            num_hidden_layers=5,
            patch_size=14,
        )
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModelWithProjection(_clip_config(projection_dim=32))
    image_processor = CLIPImageProcessor(
        crop_size=224,
        do_center_crop=True,
        do_normalize=True,
        do_resize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        resample=3,
        size=224,
    )
    prior_scheduler = UnCLIPScheduler(
        variance_type="fixed_small_log",
        prediction_type="sample",
        num_train_timesteps=1000,
        clip_sample=True,
        clip_sample_range=10.0,
    )
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        in_channels=4,
        out_channels=8,
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64),
        layers_per_block=1,
        encoder_hid_dim=32,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=32,
        attention_head_dim=4,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
    )
    torch.manual_seed(0)
    movq = VQModel(
        block_out_channels=[32, 64],
        down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
        in_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        out_channels=3,
        up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
        vq_embed_dim=4,
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
        thresholding=False,
    )
    return KandinskyV22CombinedPipeline(
        unet=unet,
        scheduler=scheduler,
        movq=movq,
        prior_prior=prior,
        prior_image_encoder=image_encoder,
        prior_text_encoder=text_encoder,
        prior_tokenizer=_clip_tokenizer(tmp / "clip"),
        prior_scheduler=prior_scheduler,
        prior_image_processor=image_processor,
    )


def _chat_tokenizer():
    """The byte tokenizer with Qwen's special tokens and a minimal chat template (Z-Image and
    FLUX.2 [klein] wrap the prompt in one)."""
    tokenizer = byte_tokenizer(512, QWEN_SPECIALS)
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tokenizer


def _sd_pag(tmp: Path):
    """SD 1.x with perturbed-attention guidance (PAG on the mid block, the pipeline's default)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPAGPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=2,
        sample_size=32,
        time_cond_proj_dim=None,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    config = _clip_config(
        hidden_size=8,
        intermediate_size=16,
        num_attention_heads=2,
        num_hidden_layers=2,
        hidden_act="quick_gelu",
        projection_dim=512,
    )
    return StableDiffusionPAGPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=CLIPTextModel(config).eval(),
        tokenizer=_clip_tokenizer(tmp / "clip"),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _sdxl_pag(tmp: Path):
    """SDXL with perturbed-attention guidance: test_pag_sdxl.py's components (SDXL's own test's:
    a two-block VAE, 2x downsampling, two CLIP encoders) with PAG on the mid, up and down
    blocks, as its ``test_pag_inference``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPAGPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(2, 4),
        layers_per_block=2,
        time_cond_proj_dim=None,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
        cross_attention_dim=64,
        norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=128,
    )
    torch.manual_seed(0)
    config = _clip_config()
    tokenizer = _clip_tokenizer(tmp / "clip")
    return StableDiffusionXLPAGPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=CLIPTextModel(config).eval(),
        tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(config).eval(),
        tokenizer_2=tokenizer,
        image_encoder=None,
        feature_extractor=None,
        pag_applied_layers=["mid", "up", "down"],
    )


def _pixart(tmp: Path, pipeline: str = "PixArtAlphaPipeline"):
    """PixArt-alpha, PixArt-Sigma and PixArt-Sigma PAG: the same components in all three tests
    (the PAG one with PAG on the pipeline's default layer); a one-block VAE, as written, so
    the latent is the size of the image. These pipelines take only the older ``callback``."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, PixArtTransformer2DModel

    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(
        sample_size=8,
        num_layers=2,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=3,
        caption_channels=32,
        in_channels=4,
        cross_attention_dim=24,
        out_channels=8,
        attention_bias=True,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL()
    torch.manual_seed(0)
    return getattr(diffusers, pipeline)(
        transformer=transformer.eval(),
        vae=vae.eval(),
        scheduler=DDIMScheduler(),
        text_encoder=_t5_encoder(),
        tokenizer=byte_tokenizer(),
    )


def _wan(tmp: Path):
    """A video pipeline (Wan 2.1), built to check the backend refuses it before the run."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return WanPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=_t5_encoder(),
        tokenizer=byte_tokenizer(),
        transformer_2=None,
    )


def _deepfloyd_if(tmp: Path):
    """DeepFloyd IF's first stage (``tests/pipelines/deepfloyd_if/__init__.py``): it denoises
    pixels, has no VAE and takes only the older ``callback``; built to check the backend
    refuses it before the run, with that reason."""
    import torch
    from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
    from diffusers.pipelines.deepfloyd_if import IFWatermarker

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=32,
        layers_per_block=1,
        block_out_channels=[32, 64],
        down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"],
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=["SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
        in_channels=3,
        out_channels=6,
        cross_attention_dim=32,
        encoder_hid_dim=32,
        attention_head_dim=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=2,
        cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift",
        act_fn="gelu",
    )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        beta_start=0.0001,
        beta_end=0.02,
        thresholding=True,
        dynamic_thresholding_ratio=0.95,
        sample_max_value=1.0,
        prediction_type="epsilon",
        variance_type="learned_range",
    )
    return IFPipeline(
        text_encoder=_t5_encoder(),
        tokenizer=byte_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        watermarker=IFWatermarker(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@dataclass(frozen=True)
class Family:
    """One text-to-image family: its diffusers pipeline class, the test file its tiny config
    comes from, and the builder."""

    name: str
    pipeline: str
    test_file: str
    build: Callable[[Path], Any]
    commit: str | None = None  # the diffusers commit read, where not SOURCE's

    @property
    def source(self) -> str:
        repo = SOURCE.split("@")[0]
        return (
            f"{repo}@{self.commit}:{self.test_file}"
            if self.commit
            else f"{SOURCE}:{self.test_file}"
        )


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "sd3",
            "StableDiffusion3Pipeline",
            "tests/pipelines/stable_diffusion_3/test_pipeline_stable_diffusion_3.py",
            _sd3,
        ),
        Family("flux", "FluxPipeline", "tests/pipelines/flux/test_pipeline_flux.py", _flux),
        Family(
            "chroma", "ChromaPipeline", "tests/pipelines/chroma/test_pipeline_chroma.py", _chroma
        ),
        Family(
            "lumina2",
            "Lumina2Pipeline",
            "tests/pipelines/lumina2/test_pipeline_lumina2.py",
            _lumina2,
        ),
        Family(
            "qwenimage",
            "QwenImagePipeline",
            "tests/pipelines/qwenimage/test_qwenimage.py",
            _qwenimage,
        ),
        Family("z-image", "ZImagePipeline", "tests/pipelines/z_image/test_z_image.py", _zimage),
        Family(
            "auraflow",
            "AuraFlowPipeline",
            "tests/pipelines/aura_flow/test_pipeline_aura_flow.py",
            _auraflow,
        ),
        Family("sana", "SanaPipeline", "tests/pipelines/sana/test_sana.py", _sana),
        Family(
            "lcm",
            "LatentConsistencyModelPipeline",
            "tests/pipelines/latent_consistency_models/test_latent_consistency_models.py",
            _lcm,
        ),
        Family(
            "lumina", "LuminaPipeline", "tests/pipelines/lumina/test_lumina_nextdit.py", _lumina
        ),
        Family(
            "cogview4", "CogView4Pipeline", "tests/pipelines/cogview4/test_cogview4.py", _cogview4
        ),
        Family(
            "kandinsky3",
            "Kandinsky3Pipeline",
            "tests/pipelines/kandinsky3/test_kandinsky3.py",
            _kandinsky3,
            "084c959bdf572e3f77b19004ff11c35cc6df1e26",
        ),
        Family(
            "hunyuan",
            "HunyuanDiTPipeline",
            "tests/pipelines/hunyuandit/test_hunyuan_dit.py",
            _hunyuandit,
            "03af56544379038b5cdabac7bf16bf4dd60b3c19",
        ),
        Family(
            "cogview3",
            "CogView3PlusPipeline",
            "tests/pipelines/cogview3/test_cogview3plus.py",
            _cogview3plus,
            "071190daca865a4d04deac0e02cda5b8c5d6f6fa",
        ),
        Family(
            "sd-pag",
            "StableDiffusionPAGPipeline",
            "tests/pipelines/pag/test_pag_sd.py",
            _sd_pag,
            "013f555075f8f500e6289568fee34651dd7fa772",
        ),
        Family(
            "hunyuan-pag",
            "HunyuanDiTPAGPipeline",
            "tests/pipelines/pag/test_pag_hunyuan_dit.py",
            functools.partial(_hunyuandit, pag=True),
            "21af0a7a68d3dcf6a150adcdfe6747dfffa232be",
        ),
        Family(
            "flux2-klein",
            "Flux2KleinPipeline",
            "tests/pipelines/flux2/test_pipeline_flux2_klein.py",
            _flux2_klein,
            "1165f9fcc2db94ed536c53ea7f9b0770cf838567",
        ),
        Family(
            "sdxl-pag",
            "StableDiffusionXLPAGPipeline",
            "tests/pipelines/pag/test_pag_sdxl.py",
            _sdxl_pag,
            "0ec79055bfdbca733f61ab1746c32ca61b4a5478",
        ),
        Family(
            "sana-pag",
            "SanaPAGPipeline",
            "tests/pipelines/pag/test_pag_sana.py",
            functools.partial(_sana, pag=True),
            "0afb7ce305382c829173ba2c17a2120080dc952f",
        ),
        Family(
            "flux2",
            "Flux2Pipeline",
            "tests/pipelines/flux2/test_pipeline_flux2.py",
            _flux2,
            "136ee3f4da74746ef6b13e8851e3376d7b92072d",
        ),
        Family(
            "ovis",
            "OvisImagePipeline",
            "tests/pipelines/ovis_image/test_ovis_image.py",
            _ovis,
            "08d3bdebdbc34fbb437439d5e8bee6605148bf9a",
        ),
        Family(
            "krea2",
            "Krea2Pipeline",
            "tests/pipelines/krea2/test_krea2.py",
            _krea2,
            "2aca8ec28404e36e0a55fca23758e85ad01390d5",
        ),
        Family(
            "kandinsky22",
            "KandinskyV22CombinedPipeline",
            "tests/pipelines/kandinsky2_2/test_kandinsky_combined.py",
            _kandinsky22,
            "f345325d8b009bc17f1d3756df3e776424e65913",
        ),
        Family(
            "pixart-alpha",
            "PixArtAlphaPipeline",
            "tests/pipelines/pixart_alpha/test_pixart.py",
            _pixart,
            "084c959bdf572e3f77b19004ff11c35cc6df1e26",
        ),
        Family(
            "pixart-sigma",
            "PixArtSigmaPipeline",
            "tests/pipelines/pixart_sigma/test_pixart.py",
            functools.partial(_pixart, pipeline="PixArtSigmaPipeline"),
            "18a3d237b7db0445f14bde21675c746bd43e64da",
        ),
        Family(
            "pixart-sigma-pag",
            "PixArtSigmaPAGPipeline",
            "tests/pipelines/pag/test_pag_pixart_sigma.py",
            functools.partial(_pixart, pipeline="PixArtSigmaPAGPipeline"),
            "3540e069cd9c9d52e55dd9f152378af2919a9a81",
        ),
        Family(
            "ideogram4",
            "Ideogram4Pipeline",
            "tests/lora/test_lora_layers_ideogram4.py",
            _ideogram4,
        ),
    )
}

VIDEO_FAMILIES: dict[str, Family] = {
    "wan": Family("wan", "WanPipeline", "tests/pipelines/wan/test_wan.py", _wan),
}
"""Video pipelines: the backend must refuse them before the run."""

REFUSED_FAMILIES: dict[str, Family] = {
    "if": Family(
        "if",
        "IFPipeline",
        "tests/pipelines/deepfloyd_if/__init__.py",
        _deepfloyd_if,
        "084c959bdf572e3f77b19004ff11c35cc6df1e26",
    ),
}
"""Text-to-image pipelines the backend refuses before the run, with the reason (NOT_RUN)."""


UNLOADABLE_FAMILIES: dict[str, Family] = {
    "prx": Family("prx", "PRXPipeline", "tests/pipelines/prx/test_pipeline_prx.py", _prx),
    "cascade": Family(
        "cascade",
        "StableCascadeCombinedPipeline",
        "tests/pipelines/stable_cascade/test_stable_cascade_combined.py",
        _cascade,
    ),
}
"""Tiny builds that save but do not load back in the installed libraries (the reason is in
families_table.NOT_RUN; a test checks it still holds)."""


SLOW_FAMILIES: dict[str, Family] = {
    "sd3-pag": Family(
        "sd3-pag",
        "StableDiffusion3PAGPipeline",
        "tests/pipelines/pag/test_pag_sd3.py",
        functools.partial(_sd3, pag=True),
    ),
}
"""Families that run but are left out of the suite for their CPU cost (families_table.NOT_RUN
says how much); ``build_family`` builds them for a run by hand."""


EDITING_FAMILIES: dict[str, Family] = {
    "flux-kontext": Family(
        "flux-kontext",
        "FluxKontextPipeline",
        "tests/pipelines/flux/test_pipeline_flux_kontext.py",
        _flux_kontext,
        "21166da8cd1dc41f037760f9a76f74393045773e",
    ),
}
"""Instruction-editing pipelines (an input image and an instruction): run by
tests/backends/diffusers/test_instruction_editing.py, not as text-to-image families."""


def is_built(folder: Path) -> bool:
    stamp = folder / "tiny_family.json"
    try:
        return json.loads(stamp.read_text()).get("version") == BUILD_VERSION
    except (OSError, ValueError):
        return False


def build_family(name: str, folder: Path) -> Path:
    """Build family ``name``'s tiny pipeline into ``folder`` unless it is there (atomic: built
    beside it, then renamed, so concurrent test workers never see half a model)."""
    if is_built(folder):
        return folder
    family = (
        FAMILIES.get(name)
        or VIDEO_FAMILIES.get(name)
        or REFUSED_FAMILIES.get(name)
        or UNLOADABLE_FAMILIES.get(name)
        or EDITING_FAMILIES.get(name)
        or SLOW_FAMILIES[name]
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        pipe = family.build(staging / "tokenizer-src")
        shutil.rmtree(staging / "tokenizer-src", ignore_errors=True)
        pipe.save_pretrained(staging)
        stamp = {"family": name, "version": BUILD_VERSION, "source": family.source}
        (staging / "tiny_family.json").write_text(json.dumps(stamp))
        try:
            os.replace(staging, folder)
        except OSError:
            if not is_built(folder):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
