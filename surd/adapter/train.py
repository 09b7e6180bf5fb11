"""Train the SUR-adapter on surd shards (image, simple/complex prompt, ``llm.npy``) with the base model frozen.

loss = ℓ_simple + λ1·ℓ_LLM + λ2·ℓ_CP (paper Eq. 10; ℓ_simple: the UNet's denoising loss conditioned on c').
Runs under accelerate (mixed precision, gradient accumulation, ``accelerate launch`` for several GPUs); writes
checkpoints that resume exactly, ``log.csv`` (and tensorboard when installed), and the adapter to ``--out``.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import os
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from surd import storage
from surd.adapter.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from surd.adapter.config import AdapterConfig, TrainConfig
from surd.adapter.data import DataPosition, decode_sample, llm_vector, positioned_stream, sample_rng, stream
from surd.adapter.features import (
    FeatureCache,
    LazyFeatureStore,
    build_feature_cache,
    compute_features,
    sample_latents,
)
from surd.adapter.mirror import pull, push
from surd.adapter.model import SURAdapter, distillation_loss
from surd.deps import require
from surd.models.sd import SDComponents, load_sd

LOG_COLUMNS = ("step", "loss", "l_simple", "l_llm", "l_cp", "lr")


def adapter_losses(adapter: Any, components: SDComponents, feats: dict[str, Any], llm: Any, cfg: TrainConfig,
                   generator: Any) -> dict[str, Any]:
    """The three loss terms and their weighted total for one micro-batch of frozen features."""
    torch = require("torch", "adapter")
    F = torch.nn.functional
    core = getattr(adapter, "module", adapter)  # under DDP, call the wrapper (gradient sync) but read W0 from the core
    c, q = adapter(feats["x"].float(), return_q=True)  # [B, 77, d] each
    l_llm = distillation_loss(core.project_llm(llm.float()), q, cfg.tau)
    l_cp = distillation_loss(feats["x_complex"], c, cfg.tau)
    sched = components.noise_scheduler
    latents = sample_latents(components, feats["mean"], feats["std"], generator)  # [B, 4, h, w]
    noise = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
    t = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],), generator=generator)
    t = t.to(latents.device)
    noisy = sched.add_noise(latents, noise, t)
    kind = sched.config.prediction_type
    if kind not in ("epsilon", "v_prediction"):
        raise ValueError(f"unsupported prediction_type {kind!r} in the base model's scheduler config")
    target = noise if kind == "epsilon" else sched.get_velocity(latents, noise, t)
    pred = components.unet(noisy, t, c.to(components.unet.dtype)).sample
    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))  # [B]
    if cfg.min_snr_gamma is not None:
        ac = sched.alphas_cumprod.to(t.device)[t].float()
        snr = ac / (1 - ac)
        weight = torch.clamp(snr, max=cfg.min_snr_gamma) / (snr + 1 if kind == "v_prediction" else snr)
        per_sample = per_sample * weight
    l_simple = per_sample.mean()
    loss = l_simple + cfg.lambda_llm * l_llm + cfg.lambda_cp * l_cp
    return {"loss": loss, "l_simple": l_simple, "l_llm": l_llm, "l_cp": l_cp}


def freeze_base(components: SDComponents) -> None:
    for m in (components.text_encoder, components.vae, components.unet):
        m.requires_grad_(False)
        m.eval()


def assert_only_adapter_trains(adapter: Any, components: SDComponents, optimizer: Any) -> None:
    """The base model and W0 stay frozen; the optimizer holds exactly the adapter's trainable parameters."""
    for m in (components.text_encoder, components.vae, components.unet):
        assert not any(p.requires_grad for p in m.parameters()), f"{type(m).__name__} must be frozen"
    assert not adapter.w0_weight.requires_grad and not adapter.w0_bias.requires_grad, "W0 must stay frozen"
    in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in adapter.parameters()}, "the optimizer must hold exactly the adapter's parameters"


class TrainLog:
    """Loss terms per optimizer step: ``log.csv`` always, tensorboard when requested and installed."""

    def __init__(self, out: Path, cfg: TrainConfig, resume_step: int, enabled: bool):
        self.path, self.enabled, self.tb = out / "log.csv", enabled, None
        if not enabled:
            return
        rows = []
        if resume_step and self.path.exists():  # drop rows a killed run logged after its last checkpoint
            with self.path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, LOG_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        if "tensorboard" in cfg.log:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional extra: imported on use

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.tb = None

    def write(self, step: int, terms: dict[str, float], lr: float) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{k: f"{v:.8g}" for k, v in terms.items()}, "lr": f"{lr:.8g}"}
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, LOG_COLUMNS).writerow(row)
        if self.tb is not None:
            for k, v in terms.items():
                self.tb.add_scalar(f"train/{k}", v, step)


def _mixed_precision(cfg: TrainConfig) -> str:
    torch = require("torch", "adapter")
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "fp16" if torch.cuda.is_available() else "no"


def _setup(cfg: TrainConfig) -> dict[str, Any]:
    """Accelerator, frozen base, adapter (fresh or from the last checkpoint), optimizer, constant-lr scheduler."""
    torch = require("torch", "adapter")
    accelerate = require("accelerate", "adapter")
    # Accelerator state is a process-wide singleton: clear what a previous run in this process set (mixed
    # precision, accumulation), keeping the distributed process group.
    accelerate.state.AcceleratorState._reset_state()
    accelerate.state.GradientState._reset_state()
    # Several CPU processes (torchrun / accelerate launch without GPUs) only form a group when asked for cpu=True.
    multi_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    acc = accelerate.Accelerator(mixed_precision=_mixed_precision(cfg), gradient_accumulation_steps=cfg.grad_accum,
                                 cpu=multi_cpu)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(acc.mixed_precision, torch.float32)
    comps = load_sd(cfg.base)
    freeze_base(comps)
    comps.to(acc.device, None if dtype == torch.float32 else dtype)
    if cfg.gradient_checkpointing:
        comps.unet.enable_gradient_checkpointing()
    ckpt = latest_checkpoint(cfg.out) if cfg.resume else None
    torch.manual_seed(cfg.seed)
    if ckpt is not None:
        adapter = SURAdapter.from_pretrained(ckpt, base_text_dim=comps.text_dim).train()
    else:
        llm_dim = int(llm_vector(next(stream(cfg.data, cfg.seed, 0, 1))).shape[0])
        adapter = SURAdapter(AdapterConfig(text_dim=comps.text_dim, llm_dim=llm_dim, base_model=comps.label,
                                           **cfg.adapter))
    adapter.to(acc.device).train()
    opt = torch.optim.AdamW(adapter.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)  # the official run's constant schedule
    assert_only_adapter_trains(adapter, comps, opt)
    adapter, opt, sched = acc.prepare(adapter, opt, sched)
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + acc.process_index)
    step, pos = load_checkpoint(acc, ckpt, opt, sched, gen) if ckpt else (0, DataPosition())
    return {"acc": acc, "comps": comps, "dtype": dtype, "adapter": adapter, "opt": opt, "sched": sched, "gen": gen,
            "step": step, "pos": pos}


def _feature_source(cfg: TrainConfig, s: dict[str, Any], resolution: int) -> Any:
    """A function [(position, sample)] → (items, features): per step (``off``), from the eager cache (built once,
    main process first), or from the lazy store (filled on first use of each sample)."""
    comps, device, dtype = s["comps"], s["acc"].device, s["dtype"]

    def decode(batch: list) -> list[dict[str, Any]]:
        return [decode_sample(smp, resolution, cfg.center_crop, cfg.random_flip, cfg.seed, p.epoch) for p, smp in batch]

    if cfg.cache_features == "off":
        return lambda batch: (items := decode(batch), compute_features(comps, items, device))
    cache_dir = cfg.cache_dir or str(Path(cfg.out) / "feature_cache")
    if cfg.cache_features == "lazy":
        store = LazyFeatureStore(cache_dir, comps, resolution, dtype)

        def lazy(batch: list) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            items = [_cache_item(smp, cfg, p.epoch) for p, smp in batch]
            missing = [b for b, it in zip(batch, items) if not store.has(it["key"], it["flip"])]
            if missing:
                fresh = decode(missing)
                store.put(fresh, compute_features(comps, fresh, device))
            return items, store.features(items, device)

        return lazy
    with s["acc"].main_process_first():
        build_feature_cache(comps, cfg.data, cache_dir, resolution, device, dtype,
                            progress=cfg.progress and s["acc"].is_main_process, flips=cfg.random_flip)
    cache = FeatureCache(cache_dir)
    return lambda batch: (items := [_cache_item(smp, cfg, p.epoch) for p, smp in batch],
                          cache.features(items, device, dtype))


def train_adapter(cfg: TrainConfig) -> Path | str:
    """Run (or resume, with ``cfg.resume``) a training run; returns ``cfg.out`` holding the final adapter."""
    if storage.is_remote(cfg.out):  # an object store: train in a local mirror, then publish (surd.adapter.mirror)
        local = pull(cfg.out)
        train_adapter(dataclasses.replace(cfg, out=str(local)))
        push(local, cfg.out)
        return cfg.out
    torch = require("torch", "adapter")

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    s = _setup(cfg)
    acc, adapter, opt, sched, gen = s["acc"], s["adapter"], s["opt"], s["sched"], s["gen"]
    resolution = cfg.resolution or s["comps"].native_resolution
    prepare = _feature_source(cfg, s, resolution)
    log = TrainLog(out, cfg, s["step"], acc.is_main_process)
    data = positioned_stream(cfg.data, s["pos"], cfg.seed, cfg.shuffle_buffer, acc.process_index, acc.num_processes)
    step, pos, totals = s["step"], s["pos"], dict.fromkeys(LOG_COLUMNS[1:5], 0.0)
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train-adapter",
               disable=not (cfg.progress and acc.is_main_process))
    while step < cfg.max_steps:
        batch = list(itertools.islice(data, cfg.batch_size))
        pos = batch[-1][0]
        items, feats = prepare(batch)
        llm = torch.stack([torch.as_tensor(it["llm"]) for it in items]).to(acc.device)  # [B, llm_dim]
        with acc.accumulate(adapter):
            terms = adapter_losses(adapter, s["comps"], feats, llm, cfg, gen)
            acc.backward(terms["loss"])
            if acc.sync_gradients:
                acc.clip_grad_norm_(adapter.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        for k in totals:
            totals[k] += float(terms[k].detach()) / cfg.grad_accum
        if acc.sync_gradients:
            step += 1
            mean = acc.reduce(torch.tensor(list(totals.values()), device=acc.device), reduction="mean")  # over ranks
            log.write(step, dict(zip(totals, mean.tolist())), sched.get_last_lr()[0])
            bar.update(1)
            bar.set_postfix(loss=f"{totals['loss']:.4f}")
            totals = dict.fromkeys(totals, 0.0)
            if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
                save_checkpoint(acc, out, step, adapter, opt, sched, gen, pos, cfg.to_dict())
    bar.close()
    if acc.is_main_process:
        acc.unwrap_model(adapter).save_pretrained(out, extra={"train_config": cfg.to_dict(), "steps": step})
    acc.wait_for_everyone()
    return out


def _cache_item(sample: dict[str, Any], cfg: TrainConfig, epoch: int) -> dict[str, Any]:
    """With cached features only the flip decision, the LLM vector and the key are needed: no image decode."""

    flip = cfg.random_flip and sample_rng(cfg.seed, epoch, sample["__key__"]).random() < 0.5
    return {"key": sample["__key__"], "flip": flip, "llm": llm_vector(sample)}


def run_job(input_dir: str | Path | None, output_dir: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """The ``train_adapter`` step of a pipeline file: train on the previous stage's shards into ``output_dir``.

    A rerun resumes from the last checkpoint (a finished run is not trained again).
    """
    if input_dir is None:
        raise ValueError("train_adapter needs an input dataset: put it after the embed stage in the pipeline")
    values = {"resume": True, **config, "data": str(input_dir), "out": str(output_dir)}
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown train_adapter config key(s) {unknown}; valid: "
                         f"{', '.join(sorted(f.name for f in dataclasses.fields(TrainConfig)))}")
    cfg = TrainConfig(**values)
    out = train_adapter(cfg)
    log = storage.join(out, "log.csv")
    return {"adapter": str(out), "steps": cfg.max_steps, "log": log if storage.exists(log) else None}
