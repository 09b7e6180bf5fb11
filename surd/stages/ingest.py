"""ingest: source rows → samples with `jpg` (resized to size²) and `json` (prompts, provenance, sha256)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import PIL

import surd
from surd import shards, storage
from surd.dedup import kept
from surd.fetch import FetchError, fetch_all
from surd.fetch.http import DownloadConfig
from surd.images import ImageConfig, ImageRejected, process_image
from surd.options import build, config, non_default, option
from surd.sample import Rejected, Sample
from surd.sources import build_source_config, get_source
from surd.sources.plan import plan_rows

NAME = "ingest"
USES_GPU = False


@config
class Config(ImageConfig):
    """Where rows come from (source + path + options), how images are fetched and sharded; the image settings
    (size, resize_mode, quality, image_format, min_size, max_pixels, resample) are `ImageConfig`'s."""

    source: str = option("manifest", cli=False,
                        help='Where rows come from: a registered source (manifest, folder, urls, civitai, ...).')
    path: str = option("", help="The source's file, folder or URL (its argument on the command line).", cli=False)
    options: dict[str, Any] = option(default_factory=dict, cli=False,
                                    help="The source's own options (its Config's fields).")
    download: dict[str, Any] = option(default_factory=dict, cli=False,
                                     help="How images are fetched (DownloadConfig's fields).")
    shard_size: int = option(1000, help='Samples per shard.', ge=1)
    dedup: bool = option(True, help="Drop samples whose image bytes repeat an earlier sample's (duplicate_image; first in shard order wins).")
    fetch_chunk: int = option(64, ge=1,
                             help='Rows fetched at once; the next chunk downloads while this one is resized.')
    decode_threads: int = option(2, ge=1,
                                help='Threads decoding, resizing and encoding images per worker (Pillow releases the GIL).')

    def __post_init__(self) -> None:
        super().__post_init__()  # validates size / mode / quality / format / limits
        build(DownloadConfig, self.download, "download")
        src = self.source_config()  # validates the source's own options (and that its files exist)
        # Nested tables keep only what differs from their defaults: a command and a pipeline file that mean the same
        # save the same config (a rerun with the other one resumes instead of refusing a changed config).
        object.__setattr__(self, "download", non_default(DownloadConfig, self.download))
        object.__setattr__(self, "options", non_default(type(src), {k: v for k, v in self.options.items()}))

    def source_config(self) -> Any:
        return build_source_config(self.source, self.path, self.options)


def versions() -> dict[str, str]:
    return {"surd": surd.__version__, "pillow": PIL.__version__}


def plan(cfg: Config, state_dir: str, append: bool = False) -> list[shards.PlannedShard]:
    """Stream the source's rows into one row file per output shard, each row with its stable key and repeated
    keys marked (`surd.sources.plan`); a finished plan is reused, so a rerun lists nothing. With `append`, the
    source is listed again (a web listing goes on from its saved state) and only the rows not planned yet are
    planned, into new shards after the last one."""
    storage.makedirs(state_dir)
    source_cfg = cfg.source_config()
    path = getattr(source_cfg, "path", "")
    tag = storage.version_tag(path) if path and storage.isfile(path) else None
    rows = get_source(cfg.source).list_rows(source_cfg, state_dir, append=append)
    return plan_rows(rows, state_dir, cfg.shard_size, tag, append=append)


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("source", "source_id", "url", "complex_prompt", "negative_prompt", "simple_prompt", "license",
            "provenance", "nsfw", "extra")
    meta = {"key": row["__key__"], **{k: row.get(k) for k in keys}}
    image = str(row.get("image") or "")
    if image.startswith(("http://", "https://")):  # where the bytes came from: what a URL-only release lists
        meta["image_url"] = image
    return meta


def _precheck(row: dict[str, Any]) -> Rejected | None:
    """Reject rows that need no fetch to know they are unusable."""
    if row.get("error"):
        return Rejected(row["__key__"], row["error"], row.get("error_detail", ""), _meta(row))
    if not (row.get("complex_prompt") or "").strip():
        return Rejected(row["__key__"], "empty_prompt", "complex prompt is empty or whitespace", _meta(row))
    return None


def _build(row: dict[str, Any], data: bytes | FetchError, cfg: Config) -> Sample | Rejected:
    meta = _meta(row)
    if isinstance(data, FetchError):
        return Rejected(row["__key__"], data.reason, data.detail, meta)
    sha256 = hashlib.sha256(data).hexdigest()
    expected = row.get("expected_sha256")
    if expected and expected != sha256:  # a released URL list: the host now serves other bytes
        return Rejected(row["__key__"], "hash_mismatch", f"expected sha256 {expected}, got {sha256}", meta)
    try:
        img = process_image(data, cfg)
    except ImageRejected as e:
        return Rejected(row["__key__"], e.reason, e.detail, meta)
    meta["complex_prompt"] = row["complex_prompt"].strip()
    meta.update(width=img.width, height=img.height, sha256=sha256,
                source_format=img.source_format, converted_from=img.converted_from)
    meta["stages"] = {NAME: {"size": cfg.size, "resize_mode": cfg.resize_mode, "resample": cfg.resample,
                             "quality": cfg.quality, "image_format": cfg.image_format, "surd": surd.__version__,
                             "original_bytes": img.original_bytes}}
    return {"__key__": row["__key__"], "json": meta, img.ext: img.data}


def _chunks(rows: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(rows), n):
        yield rows[i : i + n]


def run(samples: Iterable[dict[str, Any]], cfg: Config) -> Iterator[Sample | Rejected]:
    """Fetch, validate and resize one shard's rows; one result per row, in row order."""
    rows = list(samples)
    pre = [_precheck(r) for r in rows]  # rows rejected without a fetch (listing errors, empty prompts)
    chunks = list(zip(_chunks(rows, cfg.fetch_chunk), _chunks(pre, cfg.fetch_chunk)))
    todo = [[r for r, p in zip(chunk, rejected) if p is None] for chunk, rejected in chunks]

    def fetch(chunk: list[dict[str, Any]]) -> dict[str, bytes | FetchError]:
        return dict(zip([r["__key__"] for r in chunk], fetch_all([r["image"] for r in chunk], cfg.download)))

    with ThreadPoolExecutor(1) as pool, ThreadPoolExecutor(cfg.decode_threads) as decoders:
        pending = pool.submit(fetch, todo[0]) if todo else None
        for i, (chunk, rejected) in enumerate(chunks):
            fetched = pending.result() if pending else {}
            pending = pool.submit(fetch, todo[i + 1]) if i + 1 < len(todo) else None
            # Decode on the pool (threads overlap in Pillow); already rejected rows skip the hand-off.
            futures = [None if p is not None else decoders.submit(_build, r, fetched[r["__key__"]], cfg)
                       for r, p in zip(chunk, rejected)]
            yield from (p if f is None else f.result() for p, f in zip(rejected, futures))  # row order kept


def finalize(output_dir: str, cfg: Config) -> dict[str, int]:
    """Drop images whose bytes repeat an earlier sample's (first by shard, then position wins).

    Runs after every shard is done, so the decision never depends on which worker finished first;
    rerunning it is a no-op. The kept images' sha256 are saved (`surd.dedup.kept`): after an append only the new
    shards are read, and checked against them. Returns {stem: n dropped}.
    """
    if not cfg.dedup:
        return {}
    index, todo = kept.open_index(output_dir, NAME, {"dedup": "sha256"}, {"sha256": "U64"})
    old = index.columns["sha256"]
    order = np.argsort(old)
    old_sorted = old[order]
    first: dict[str, str] = {}
    drops: dict[str, dict[str, tuple[str, str]]] = {}
    new_keys: list[str] = []
    for stem in todo:
        rows = [r for r in shards.read_sidecar(output_dir, stem) if r["status"] == "kept" and r["meta"].get("sha256")]
        shas = np.asarray([r["meta"]["sha256"] for r in rows], dtype="U64")
        at = np.minimum(np.searchsorted(old_sorted, shas), max(len(old) - 1, 0))
        for row, sha, j in zip(rows, shas.tolist(), at.tolist()):
            keeper = str(index.keys[order[j]]) if len(old) and old_sorted[j] == sha else first.get(sha)
            if keeper is not None:
                drops.setdefault(stem, {})[row["key"]] = ("duplicate_image", f"same bytes as {keeper}")
            else:
                first[sha] = row["key"]
                new_keys.append(row["key"])
    for stem, keys in drops.items():
        shards.drop_samples(output_dir, stem, keys)
    index.extend(todo, new_keys, sha256=np.asarray(list(first), dtype="U64"))
    kept.write(output_dir, NAME, index)
    return {stem: len(keys) for stem, keys in drops.items()}
