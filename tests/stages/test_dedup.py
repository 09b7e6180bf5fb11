"""dedup: the exact Hamming index against brute force, pHash against imagehash, the first-wins decision against a
naive reference, and the stage over shards of real photos with planted near-duplicates (any worker count)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from surd import shards
from surd.dedup.decide import DUPLICATE_PROMPT, NEAR_DUPLICATE, Drop, first_wins, normalise_prompt, phash64
from surd.dedup.index import (
    Block,
    brute_force_pairs,
    check_blocks,
    make_blocks,
    near_pairs,
    plan_blocks,
    popcount64,
)
from surd.runner import run_stage
from surd.stages.dedup import Config
from tests.conftest import REPO

IMAGES = sorted((REPO / "manifests/sample/images").glob("*.jpg"))


def planted(n: int, max_distance: int, seed: int) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """n random hashes where a fifth are copies of others with 0..max_distance bits flipped; the planted pairs."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, size=n, dtype=np.uint64)
    pairs = set()
    copies = rng.choice(n, n // 5, replace=False)
    originals = rng.choice(np.setdiff1d(np.arange(n), copies), len(copies))
    for c, o in zip(copies.tolist(), originals.tolist()):
        flips = rng.choice(64, int(rng.integers(0, max_distance + 1)), replace=False)
        h[c] = h[o] ^ np.uint64(sum(1 << int(b) for b in flips))
        pairs.add((min(c, o), max(c, o)))
    return h, pairs


def as_set(i: np.ndarray, j: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(i.tolist(), j.tolist()))


@pytest.mark.parametrize("n,t", [(3000, 8), (4000, 3), (2000, 12), (2500, 0), (1500, 20), (1, 8), (0, 8)])
def test_near_pairs_equal_brute_force_and_find_every_planted_pair(n: int, t: int) -> None:
    h, truth = planted(n, t, seed=n + t)
    fast, slow = near_pairs(h, t), brute_force_pairs(h, t)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)
    assert truth <= as_set(fast[0], fast[1])  # recall of the planted pairs: 100%
    assert all(int(d) == bin(int(h[i]) ^ int(h[j])).count("1") for i, j, d in zip(*fast))


@pytest.mark.parametrize("m", [3, 4, 5, 7, 9, 12, 16])
def test_every_block_split_is_exact(m: int) -> None:
    h, truth = planted(2000, 8, seed=m)
    expected = brute_force_pairs(h, 8)
    got = near_pairs(h, 8, make_blocks(m, 8))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert truth <= as_set(got[0], got[1])


def test_exact_copies_and_a_huge_bucket_are_handled(monkeypatch) -> None:
    import surd.dedup.index as index

    monkeypatch.setattr(index, "CANDIDATE_CHUNK", 97)  # candidates expanded in many small chunks
    rng = np.random.default_rng(1)
    h = np.concatenate([np.full(60, 12345, dtype=np.uint64), rng.integers(0, 2**62, 300, dtype=np.uint64)])
    got, expected = near_pairs(h, 6), brute_force_pairs(h, 6)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert len(got[0]) >= 60 * 59 // 2


def test_block_plans_are_checked() -> None:
    with pytest.raises(ValueError, match="radius"):
        check_blocks([Block(0, 22, 1), Block(22, 21, 1), Block(43, 21, 1)], 8)  # 6 < 9: pairs could be missed
    with pytest.raises(ValueError, match="cover 43 of 64"):
        check_blocks([Block(0, 22, 3), Block(22, 21, 3)], 8)
    with pytest.raises(ValueError, match="tile"):
        check_blocks([Block(0, 22, 3), Block(23, 21, 3), Block(44, 20, 3)], 8)
    with pytest.raises(ValueError, match="0..64"):
        near_pairs(np.zeros(3, np.uint64), 65)
    assert len(plan_blocks(1_000_000, 8)) == 3 and len(plan_blocks(1000, 8)) > 3  # wide blocks only for big inputs


def test_popcount_with_and_without_numpy_bitwise_count(monkeypatch) -> None:
    x = np.random.default_rng(0).integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = [bin(int(v)).count("1") for v in x]
    assert popcount64(x).tolist() == expected
    if hasattr(np, "bitwise_count"):
        monkeypatch.delattr(np, "bitwise_count")
    assert popcount64(x).tolist() == expected


def test_phash64_is_imagehash_phash_on_real_photos() -> None:
    import imagehash

    for path in IMAGES:
        img = Image.open(path).convert("RGB")
        assert f"{phash64(img):016x}" == str(imagehash.phash(img)), path.name


def naive_first_wins(hashes: list[int], t: int, prompts: list[str] | None) -> list[Drop]:
    """The decision written the obvious O(n²) way."""
    kept: list[int] = []
    drops = []
    for s, h in enumerate(hashes):
        near = [(k, bin(h ^ hashes[k]).count("1")) for k in kept if bin(h ^ hashes[k]).count("1") <= t]
        if near:
            drops.append(Drop(s, NEAR_DUPLICATE, near[0][0], near[0][1]))
            continue
        p = normalise_prompt(prompts[s]) if prompts else ""
        owner = next((k for k in kept if p and normalise_prompt(prompts[k]) == p), None)
        if owner is not None:
            drops.append(Drop(s, DUPLICATE_PROMPT, owner))
            continue
        kept.append(s)
    return drops


@pytest.mark.parametrize("with_prompts", [False, True])
def test_first_wins_equals_the_naive_decision(with_prompts: bool) -> None:
    h, _ = planted(600, 6, seed=3)
    h[50:60] = h[40]  # exact copies
    prompts = [f"A Cat, {i % 97}!" if i % 3 else f"a  cat {i % 97}" for i in range(len(h))]
    hashes = [int(v) for v in h]
    assert first_wins(hashes, 6, prompts if with_prompts else None) == naive_first_wins(
        hashes, 6, prompts if with_prompts else None)


def test_first_wins_compares_with_kept_samples_only() -> None:
    a, b, c = 0, 0b1111, 0b11111111  # a~b (4 bits), b~c (4 bits), a !~ c (8 bits) at t = 5
    drops = first_wins([a, b, c, b, a], 5)
    assert drops == [Drop(1, NEAR_DUPLICATE, 0, 4), Drop(3, NEAR_DUPLICATE, 0, 4), Drop(4, NEAR_DUPLICATE, 0, 0)]
    # c is kept: its only near neighbour (b) was dropped, and a dropped sample cannot claim anything


def test_prompt_normalisation() -> None:
    assert normalise_prompt("A cat,  8K!") == normalise_prompt("a cat 8k") == "a cat 8k"
    assert normalise_prompt("ＣＡＴ_photo") == "cat photo"  # NFKC folds full-width letters
    assert normalise_prompt(None) == "" and normalise_prompt("  ,, ") == ""
    with pytest.raises(ValueError, match="prompts"):
        first_wins([1, 2], 4, ["x"])


# ---------------------------------------------------------------------------------------------- the stage


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def variants(path: Path) -> list[bytes]:
    """What scrapes are full of: re-encoded, downscaled, brightened and watermarked copies of one image."""
    img = Image.open(path).convert("RGB")
    marked = img.copy()
    ImageDraw.Draw(marked).text((10, 10), "@somebody", fill=(255, 255, 255))
    return [jpeg(img, 35), jpeg(img.resize((img.width // 2, img.height // 2))), jpeg(Image.eval(img, lambda v: min(255, int(v * 1.1)))),
            jpeg(marked)]


def sample(key: str, data: bytes, prompt: str) -> dict:
    return {"__key__": key, "jpg": data, "json": {"key": key, "complex_prompt": prompt}}


def build_dataset(root: Path) -> tuple[Path, dict[str, str]]:
    """3 shards of the 32 sample photos/drawings plus 12 planted copies; copy key → the key that must be kept."""
    originals = [sample(f"{i:016x}", path.read_bytes(), f"prompt {path.stem}") for i, path in enumerate(IMAGES)]
    expect: dict[str, str] = {}
    copies = []
    for n, src in enumerate((0, 5, 20)):
        for v, data in enumerate(variants(IMAGES[src])):
            key = f"c{n}{v}".ljust(16, "0")
            copies.append(sample(key, data, f"copy {n}{v}"))
            expect[key] = originals[src]["__key__"]
    # A copy placed before its original (shard 0) is kept and the original dropped: first in shard order wins.
    early = copies.pop(8)
    expect.pop(early["__key__"])
    expect[originals[20]["__key__"]] = early["__key__"]
    for k in [c["__key__"] for c in copies[8:]]:
        expect[k] = early["__key__"]
    bad = {"__key__": "badbadbadbadbad0", "jpg": b"not an image", "json": {"key": "bad", "complex_prompt": "x"}}
    parts = [[early, *originals[:10]], [*originals[10:22], *copies[:5], bad], [*originals[22:], *copies[5:]]]
    src_dir = root / "00_ingest"
    for i, part in enumerate(parts):
        shards.write_shard(src_dir, shards.shard_name(i), part)
    return src_dir, expect


def files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.suffix in (".tar", ".parquet")}


def test_stage_drops_planted_copies_across_shards_for_any_worker_count(tmp_path: Path) -> None:
    src, expect = build_dataset(tmp_path)
    one = run_stage("dedup", {"max_distance": 8}, tmp_path / "w1", src, progress=False)
    two = run_stage("dedup", {"max_distance": 8}, tmp_path / "w2", src, workers=2, progress=False)
    assert one.ok and two.ok
    assert files(tmp_path / "w1") == files(tmp_path / "w2")  # byte-identical shards and sidecars
    st = one.stats
    assert st["rejected"] == {"decode_error": 1, "near_duplicate": len(expect)}
    assert st["in"] == 32 + 12 + 1 == st["kept"] + sum(st["rejected"].values())
    rows = [r for stem in shards.list_done(tmp_path / "w1") for r in shards.read_sidecar(tmp_path / "w1", stem)]
    dropped = {r["key"]: r["detail"] for r in rows if r["reason"] == "near_duplicate"}
    assert set(dropped) == set(expect)
    for key, detail in dropped.items():
        assert detail.startswith(f"near-duplicate of {expect[key]} (pHash Hamming distance ")
    kept = list(shards.iter_dataset(tmp_path / "w1"))
    assert len(kept) == st["kept"] and all(len(s["json"]["stages"]["dedup"]["phash"]) == 16 for s in kept)
    assert not set(expect) & {s["__key__"] for s in kept}
    for stats in shards.read_stats(tmp_path / "w1").values():  # per shard too: in = kept + Σ rejected
        assert stats["in"] == stats["kept"] + sum(stats["rejected"].values())


def test_rerun_and_a_half_applied_decision_end_the_same(tmp_path: Path) -> None:
    from surd.stages import dedup

    src, _ = build_dataset(tmp_path)
    run_stage("dedup", {"max_distance": 8}, tmp_path / "full", src, progress=False)
    full = files(tmp_path / "full")
    again = run_stage("dedup", {"max_distance": 8}, tmp_path / "full", src, progress=False)
    assert again.skipped and files(tmp_path / "full") == full  # finalize on finished shards drops nothing more

    cfg = Config(max_distance=8)
    half = tmp_path / "half"
    for stem in ("00000", "00001", "00002"):
        shards.write_shard(half, stem, dedup.run(shards.read_shard(src / f"{stem}.tar"), cfg))
    stems, keys, hashes, prompts = dedup._kept_rows(half, shards.list_done(half))
    drops = dedup.first_wins(hashes, 8)
    shards.drop_samples(half, "00002", {keys[d.index]: (d.reason, dedup._detail(d, keys, cfg))
                                        for d in drops if stems[d.index] == "00002"})
    dedup.finalize(half, cfg)  # as after a crash half-way through applying the drops
    assert files(half) == full


def test_prompt_dedup_and_config_errors(tmp_path: Path) -> None:
    a, b, c = IMAGES[:3]
    src = tmp_path / "in"
    shards.write_shard(src, "00000", [sample("a" * 16, a.read_bytes(), "A castle, 8K!"),
                                      sample("b" * 16, b.read_bytes(), "a castle 8k"),
                                      sample("c" * 16, c.read_bytes(), "a castle at night")])
    off = run_stage("dedup", {}, tmp_path / "off", src, progress=False)
    on = run_stage("dedup", {"prompt_dedup": True}, tmp_path / "on", src, progress=False)
    assert off.stats["kept"] == 3 and on.stats["rejected"] == {"duplicate_prompt": 1}
    row = next(r for r in shards.read_sidecar(tmp_path / "on", "00000") if r["status"] == "rejected")
    assert row["key"] == "b" * 16 and row["detail"] == f"same normalised complex prompt as {'a' * 16}"
    assert json.loads((tmp_path / "on" / "_config.json").read_text())["config"]["prompt_dedup"] is True
    with pytest.raises(ValueError, match="max_distance must be <= 32, got 40"):
        Config(max_distance=40)


def test_cli_dedup(tmp_path: Path) -> None:
    from surd.cli import app

    src, expect = build_dataset(tmp_path)
    res = CliRunner().invoke(app, ["dedup", str(src), "--out", str(tmp_path / "o"), "--max-distance", "8"])
    assert res.exit_code == 0, res.output
    assert f"near_duplicate: {len(expect)}" in res.output and "decode_error: 1" in res.output
    assert "Example:" in CliRunner().invoke(app, ["dedup", "--help"]).output


# ---------------------------------------------------------------------------------------------- appends


def hashed_shards(root: Path, hashes: np.ndarray, prompts: list[str], per_shard: int, stems: list[int]) -> None:
    """Write shards `stems` of a dedup output whose samples carry the given pHashes (the finalize pass reads only
    the sidecars' records; the images are stand-ins)."""
    for s in stems:
        part = []
        for i in range(s * per_shard, min(len(hashes), (s + 1) * per_shard)):
            key = f"{i:016x}"
            part.append({"__key__": key, "jpg": b"stand-in", "json": {
                "key": key, "complex_prompt": prompts[i],
                "stages": {"dedup": {"phash": f"{int(hashes[i]):016x}", "max_distance": 8}}}})
        shards.write_shard(root, shards.shard_name(s), part)


def outcomes(root: Path) -> dict[str, tuple[str, str | None, str | None]]:
    return {r["key"]: (r["status"], r["reason"], r["detail"])
            for stem in shards.list_done(root) for r in shards.read_sidecar(root, stem)}


@pytest.mark.parametrize("prompt_dedup", [False, True])
def test_finalize_after_an_append_reads_only_new_shards_and_decides_as_over_everything(tmp_path, monkeypatch,
                                                                                      prompt_dedup):
    """Near-duplicates and repeated prompts planted across the old and new shards: deciding the old shards, then
    again after new ones joined, drops exactly what one decision over all shards drops (same reasons, same
    keepers), and the second pass reads only the new shards' sidecars."""
    from surd.stages import dedup

    h, _ = planted(900, 8, seed=11)
    prompts = [f"A cat {i % 300}!" if i % 4 == 0 else f"prompt {i}" for i in range(len(h))]
    cfg = Config(max_distance=8, prompt_dedup=prompt_dedup)
    hashed_shards(tmp_path / "whole", h, prompts, 100, list(range(9)))
    dedup.finalize(tmp_path / "whole", cfg)
    hashed_shards(tmp_path / "grown", h, prompts, 100, list(range(6)))
    dedup.finalize(tmp_path / "grown", cfg)
    hashed_shards(tmp_path / "grown", h, prompts, 100, [6, 7, 8])
    read: list[str] = []
    real = shards.read_sidecar
    monkeypatch.setattr(shards, "read_sidecar", lambda d, stem: read.append(stem) or real(d, stem))
    counts = dedup.finalize(tmp_path / "grown", cfg)
    assert sorted(set(read)) == ["00006", "00007", "00008"]  # the append's shards, and the ones it drops in
    assert outcomes(tmp_path / "grown") == outcomes(tmp_path / "whole")
    assert counts[NEAR_DUPLICATE] > 0 and (counts[DUPLICATE_PROMPT] > 0) == prompt_dedup
    monkeypatch.setattr(shards, "read_sidecar", real)
    assert dedup.finalize(tmp_path / "grown", cfg) == {NEAR_DUPLICATE: 0, DUPLICATE_PROMPT: 0}  # idempotent


def test_a_damaged_or_foreign_index_is_rebuilt_and_a_late_shard_asks_for_it(tmp_path):
    from surd.dedup import kept
    from surd.stages import dedup

    h, _ = planted(500, 8, seed=5)
    prompts = [f"p {i}" for i in range(len(h))]
    cfg = Config(max_distance=8)
    hashed_shards(tmp_path / "whole", h, prompts, 100, list(range(5)))
    dedup.finalize(tmp_path / "whole", cfg)
    hashed_shards(tmp_path / "grown", h, prompts, 100, [0, 1, 2])
    dedup.finalize(tmp_path / "grown", cfg)
    index = tmp_path / "grown" / "_state" / "dedup_kept.npz"
    index.write_bytes(b"PK\x03\x04 torn")  # damaged: decided over everything again, with the same result
    hashed_shards(tmp_path / "grown", h, prompts, 100, [3, 4])
    dedup.finalize(tmp_path / "grown", cfg)
    assert outcomes(tmp_path / "grown") == outcomes(tmp_path / "whole")
    settings = {"max_distance": 8, "prompt_dedup": False, "hash": dedup.HASH}
    dtypes = {"phash": np.uint64, "prompt": "U32"}
    assert kept.read(str(tmp_path / "grown"), "dedup", {"max_distance": 9}, dtypes) is None  # other settings
    saved = kept.read(str(tmp_path / "grown"), "dedup", settings, dtypes)
    assert saved is not None and saved.stems == [f"{i:05d}" for i in range(5)]
    for bad in ({"phash": saved.columns["phash"][:-1]}, {"phash": saved.columns["phash"].astype(np.float64)},
                {"prompt": None}):  # a column a row short, of another type, missing: not used
        columns = {k: v for k, v in {**saved.columns, **bad}.items() if v is not None}
        kept.write(str(tmp_path / "grown"), "dedup", kept.KeptIndex(settings, saved.stems, saved.keys, columns))
        assert kept.read(str(tmp_path / "grown"), "dedup", settings, dtypes) is None
        dedup.finalize(tmp_path / "grown", cfg)  # decided over everything again: the same outcomes
        assert outcomes(tmp_path / "grown") == outcomes(tmp_path / "whole")
    assert kept.new_stems(saved, [f"{i:05d}" for i in range(7)]) == ["00005", "00006"]
    assert kept.new_stems(kept.KeptIndex({}, ["00000", "00002"]), ["00000", "00001", "00002"]) is None  # late
    assert kept.new_stems(kept.KeptIndex({}, ["00000", "00009"]), ["00000"]) is None  # a covered shard gone


def test_near_pairs_between_equals_brute_force_across_two_sets() -> None:
    from surd.dedup.index import near_pairs_between

    h, _ = planted(2400, 10, seed=9)
    queries, base = h[:400], h[400:]
    for t in (0, 5, 10):
        i, j, d = near_pairs_between(queries, base, t)
        bi, bj, bd = brute_force_pairs(h, t)
        across = (bi < 400) & (bj >= 400)
        assert set(zip(i.tolist(), j.tolist(), d.tolist())) == set(
            zip(bi[across].tolist(), (bj[across] - 400).tolist(), bd[across].tolist()))
        assert len(i) == int(across.sum())  # each pair once
    assert [len(a) for a in near_pairs_between(queries[:0], base, 8)] == [0, 0, 0]
