"""`surd train-adapter`, `surd generate`, `surd import-adapter`: train the SUR-adapter on shards, compare base vs
adapter images, convert official checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from surd.adapter.config import TrainConfig
from surd.adapter.inference import generate_grid
from surd.models.sd import build_pipeline, load_sd


def train_adapter_cmd(
    data: Path = typer.Argument(..., help="Dataset directory (shards with jpg, json prompts and llm.npy)."),
    base: str = typer.Option(..., "--base", help="Base SD model: hub id, local diffusers folder, or tiny."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: adapter files, checkpoints/, log.csv."),
    max_steps: int = typer.Option(5000, help="Optimizer steps."),
    batch_size: int = typer.Option(1, help="Samples per micro-batch (per GPU)."),
    grad_accum: int = typer.Option(4, help="Micro-batches per optimizer step."),
    lr: float = typer.Option(1e-5, help="Learning rate (constant)."),
    checkpoint_every: int = typer.Option(100, help="Optimizer steps between full checkpoints."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --out."),
    cache_features: str = typer.Option("off", help="Frozen VAE latents + text features: off, eager (precompute all "
                                       "once) or lazy (store each sample's on first use; never slower than off)."),
    cache_dir: str = typer.Option(None, help="Feature cache folder (default OUT/feature_cache)."),
    resolution: int = typer.Option(None, help="Training image size (default: the base model's, 512 for SD 1.x)."),
    mixed_precision: str = typer.Option("auto", help="auto (fp16 on GPU), no, fp16 or bf16."),
    gradient_checkpointing: bool = typer.Option(True, help="Recompute UNet activations in backward (less memory)."),
    center_crop: bool = typer.Option(True, help="Center crop (else random crop)."),
    random_flip: bool = typer.Option(True, help="Random horizontal flip."),
    lambda_llm: float = typer.Option(1e-5, help="Weight of the LLM distillation loss."),
    lambda_cp: float = typer.Option(1e-5, help="Weight of the complex-prompt distillation loss."),
    eta: float = typer.Option(0.1, help="Adapter share of the output (official --adapter_weight)."),
    min_snr_gamma: float = typer.Option(None, help="Min-SNR-γ loss weighting (e.g. 5.0); off by default."),
    seed: int = typer.Option(0, help="Seed of initialisation, data order, noise."),
) -> None:
    """Train the SUR-adapter with the base model frozen; multi-GPU with `accelerate launch -m surd train-adapter`.

    Example: surd train-adapter runs/sample/05_embed --base runwayml/stable-diffusion-v1-5 --out runs/adapter
    """
    from surd.adapter.train import train_adapter  # imports torch at module level

    cfg = TrainConfig(data=str(data), base=base, out=str(out), max_steps=max_steps, batch_size=batch_size,
                      grad_accum=grad_accum, lr=lr, checkpoint_every=checkpoint_every, resume=resume,
                      cache_features=cache_features, cache_dir=cache_dir, resolution=resolution,
                      mixed_precision=mixed_precision, gradient_checkpointing=gradient_checkpointing,
                      center_crop=center_crop, random_flip=random_flip, lambda_llm=lambda_llm, lambda_cp=lambda_cp,
                      min_snr_gamma=min_snr_gamma, seed=seed, adapter={"eta": eta})
    path = train_adapter(cfg)
    typer.echo(f"adapter written to {path} (log: {path / 'log.csv'})")


def generate_cmd(
    base: str = typer.Option(..., "--base", help="Base SD model: hub id, local diffusers folder, or tiny."),
    adapter: Path = typer.Option(..., "--adapter", help="Folder written by `surd train-adapter`."),
    prompt: list[str] = typer.Option(..., "--prompt", "-p", help="Prompt (repeat for several rows)."),
    seed: list[int] = typer.Option([0], "--seed", help="Seed (repeat for several rows per prompt)."),
    negative_prompt: str = typer.Option("", help="Negative prompt for every row."),
    steps: int = typer.Option(20, help="Denoising steps."),
    guidance: float = typer.Option(7.5, help="Classifier-free guidance scale."),
    size: int = typer.Option(None, help="Image side in pixels (default: the base model's native size)."),
    pipeline: str = typer.Option("sd", help="sd, sag (self-attention guidance) or panorama."),
    out: Path = typer.Option(Path("grid.png"), "--out", "-o", help="Grid image: baseline | adapter per row."),
) -> None:
    """Generate baseline and adapter images side by side with the same seeds.

    Example: surd generate --base runwayml/stable-diffusion-v1-5 --adapter runs/adapter -p "a cat" --seed 1 -o grid.png
    """
    from surd.adapter.model import SURAdapter  # imports torch at module level

    comps = load_sd(base)
    ad = SURAdapter.from_pretrained(adapter, base_text_dim=comps.text_dim)
    side = size or comps.native_resolution
    pipe = build_pipeline(comps, kind=pipeline)
    grid, rows = generate_grid(pipe, ad, prompt, seed, negative_prompt, num_inference_steps=steps,
                               guidance_scale=guidance, height=side, width=side)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    typer.echo(f"wrote {out}: {len(rows)} rows (baseline | adapter), {side}px")


def import_adapter_cmd(
    checkpoint: Path = typer.Argument(..., help="Official checkpoint: adapter_checkpoint<step>.pt or adapter.pt."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for adapter_config.json + adapter_model.safetensors."),
    llm_dim: int = typer.Option(5120, help="LLM width of the run: 4096 (7B), 5120 (13B, run.sh), 6656 (33B)."),
    eta: float = typer.Option(0.1, help="The run's --adapter_weight (0.1 in the official run.sh)."),
    base_text_dim: int = typer.Option(None, help="Refuse the checkpoint unless its width matches (768 for SD 1.x)."),
) -> None:
    """Convert an official SUR-adapter checkpoint (tensors only, weights_only=True) to surd's adapter format.

    Example: surd import-adapter checkpoints/adapter_checkpoint5000.pt --out runs/official-adapter --llm-dim 5120
    """
    from surd.adapter.model import import_official_checkpoint  # imports torch at module level

    adapter = import_official_checkpoint(checkpoint, llm_dim=llm_dim, eta=eta, base_text_dim=base_text_dim)
    adapter.save_pretrained(out, extra={"imported_from": str(checkpoint)})
    c = adapter.config
    typer.echo(f"wrote {out}: text width {c.text_dim}, {c.n_layers} layers, ff {c.ff_dim}, eta {c.eta}")


def register(app: typer.Typer) -> None:
    """Add `train-adapter`, `generate` and `import-adapter` to the surd app."""
    app.command("train-adapter")(train_adapter_cmd)
    app.command("generate")(generate_cmd)
    app.command("import-adapter")(import_adapter_cmd)
