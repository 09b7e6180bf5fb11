"""Stable Diffusion base models for the adapter: a hub id, a local diffusers folder, or ``tiny``.

``tiny`` (or ``tiny:<text width>``) builds small random models of the real classes in code — UNet2DConditionModel,
AutoencoderKL, CLIPTextModel with the real CLIP tokenizer, DDPM/PNDM schedulers — for tests and offline smoke
runs: 64 px images, 32 px latents. The text width d is always read from the text encoder's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from surd.deps import require
from surd.models import TINY, ModelLoadError, offline_hint, parse_spec
from surd.models.tokenizers import CLIP_VOCAB_SIZE, clip_tokenizer

TINY_TEXT_DIM = 32


@dataclass
class SDComponents:
    """The frozen pieces of a Stable Diffusion model, as the adapter's trainer and inference need them."""

    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    noise_scheduler: Any  # DDPM, for training
    sample_scheduler: Any  # for generation (PNDM, like the SD 1.x pipelines)
    label: str

    @property
    def text_dim(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_resolution(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    def to(self, device: Any, dtype: Any = None) -> SDComponents:
        for m in (self.text_encoder, self.vae, self.unet):
            m.to(device=device, dtype=dtype)
        return self


def tiny_sd_components(text_dim: int = TINY_TEXT_DIM, unet_channels: tuple[int, ...] = (32, 64),
                       vae_channels: tuple[int, ...] = (32, 64), text_layers: int = 2, layers_per_block: int = 1,
                       sample_size: int = 32, vae_layers_per_block: int = 1, seed: int = 0) -> SDComponents:
    """Small random SD components (real classes, real CLIP tokenizer); sizes as diffusers' own tests use."""
    torch = require("torch", "adapter")
    diffusers = require("diffusers", "adapter")
    from transformers import CLIPTextConfig, CLIPTextModel  # optional extra: imported on use

    torch.manual_seed(seed)
    n = len(unet_channels)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=unet_channels, layers_per_block=layers_per_block, sample_size=sample_size,
        in_channels=4, out_channels=4, cross_attention_dim=text_dim, attention_head_dim=max(1, text_dim // 8),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",), norm_num_groups=min(32, unet_channels[0]))
    vae = diffusers.AutoencoderKL(
        block_out_channels=list(vae_channels), in_channels=3, out_channels=3, latent_channels=4,
        layers_per_block=vae_layers_per_block,
        down_block_types=["DownEncoderBlock2D"] * len(vae_channels),
        up_block_types=["UpDecoderBlock2D"] * len(vae_channels), norm_num_groups=min(32, vae_channels[0]))
    text_cfg = CLIPTextConfig(hidden_size=text_dim, intermediate_size=2 * text_dim, num_attention_heads=4,
                              num_hidden_layers=text_layers, vocab_size=CLIP_VOCAB_SIZE, max_position_embeddings=77,
                              bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    text_encoder = CLIPTextModel(text_cfg)
    sched = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 steps_offset=1)
    return SDComponents(tokenizer=clip_tokenizer(), text_encoder=text_encoder.eval(), vae=vae.eval(),
                        unet=unet.eval(), noise_scheduler=diffusers.DDPMScheduler(**sched),
                        sample_scheduler=diffusers.PNDMScheduler(skip_prk_steps=True, **sched), label=TINY)


def tiny_controlnet(components: SDComponents, seed: int = 0) -> Any:
    """A ControlNetModel shaped like the tiny UNet; its conditioning embedding downsamples by the VAE factor."""
    torch = require("torch", "adapter")
    diffusers = require("diffusers", "adapter")
    torch.manual_seed(seed)
    steps = components.vae_scale_factor.bit_length() - 1  # number of 2x downsamples in the conditioning embedding
    channels = tuple(16 * 2**i for i in range(steps + 1))
    return diffusers.ControlNetModel.from_unet(components.unet, conditioning_embedding_out_channels=channels).eval()


def load_sd(spec: str) -> SDComponents:
    """``tiny[:d]`` → random tiny components; a local folder or hub id → the diffusers layout (subfolders)."""
    parsed = parse_spec(spec)
    if parsed.kind == TINY:
        _, _, width = parsed.value.partition(":")
        return tiny_sd_components(text_dim=int(width) if width else TINY_TEXT_DIM)
    diffusers = require("diffusers", "adapter")
    from transformers import CLIPTextModel, CLIPTokenizer  # optional extra: imported on use

    src = parsed.value
    try:
        parts = dict(
            tokenizer=CLIPTokenizer.from_pretrained(src, subfolder="tokenizer"),
            text_encoder=CLIPTextModel.from_pretrained(src, subfolder="text_encoder").eval(),
            vae=diffusers.AutoencoderKL.from_pretrained(src, subfolder="vae").eval(),
            unet=diffusers.UNet2DConditionModel.from_pretrained(src, subfolder="unet").eval(),
            noise_scheduler=diffusers.DDPMScheduler.from_pretrained(src, subfolder="scheduler"),
            sample_scheduler=diffusers.PNDMScheduler.from_pretrained(src, subfolder="scheduler"),
        )
    except OSError as e:
        if parsed.kind == "hub":
            raise ModelLoadError(offline_hint(src, "--base")) from e
        raise ModelLoadError(f"{src} is not a diffusers Stable Diffusion folder (needs tokenizer/, text_encoder/, vae/, "
                      f"unet/, scheduler/): {e}") from e
    return SDComponents(label=parsed.label, **parts)


def save_components(components: SDComponents, directory: str) -> None:
    """Write components in the diffusers folder layout, loadable by `load_sd` and by diffusers pipelines."""
    components.tokenizer.save_pretrained(f"{directory}/tokenizer")
    components.text_encoder.save_pretrained(f"{directory}/text_encoder")
    components.vae.save_pretrained(f"{directory}/vae")
    components.unet.save_pretrained(f"{directory}/unet")
    components.noise_scheduler.save_pretrained(f"{directory}/scheduler")


def build_pipeline(components: SDComponents, controlnet: Any = None, kind: str = "sd") -> Any:
    """A diffusers pipeline over the components: ``sd``, ``controlnet``, ``sag`` or ``panorama``."""
    diffusers = require("diffusers", "adapter")
    classes = {"sd": "StableDiffusionPipeline", "controlnet": "StableDiffusionControlNetPipeline",
               "sag": "StableDiffusionSAGPipeline", "panorama": "StableDiffusionPanoramaPipeline"}
    if kind not in classes:
        raise ValueError(f"unknown pipeline kind {kind!r}; use one of {', '.join(classes)}")
    if (kind == "controlnet") != (controlnet is not None):
        raise ValueError("pass a controlnet model exactly when kind='controlnet'")
    sched_cls = diffusers.DDIMScheduler if kind == "panorama" else type(components.sample_scheduler)
    parts = dict(vae=components.vae, text_encoder=components.text_encoder, tokenizer=components.tokenizer,
                 unet=components.unet, scheduler=sched_cls.from_config(components.sample_scheduler.config),
                 safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if controlnet is not None:
        parts["controlnet"] = controlnet
    pipe = getattr(diffusers, classes[kind])(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe
