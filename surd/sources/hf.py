"""Hugging Face datasets through `datasets`: a hub name, a `save_to_disk` folder, or a data folder or file (parquet,
imagefolder, webdataset…), streamed split by split.

The image and prompt columns are named (``image_col``, ``prompt_col``) or detected: the first ``Image`` feature (else
a column called image/img/jpg/png/webp), the first of PROMPT_COLUMNS. Images are read undecoded: bytes the dataset
holds are spooled into tars in the ingest's state folder (``_state/hf/<split>/NNNNN.tar``, read back by offset by
`surd.fetch.tar`, so the plan stays small), images the dataset only names by path are read from that path. Each row
keeps its dataset, config, split, row number and every other plain column as provenance; its source id is the id
column when there is one (``__key__``, ``key``, ``id``…), else ``<split>/<row>``.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from typing import Any

from surd import storage
from surd.deps import require
from surd.fetch.tar import tar_ref
from surd.files import write_bytes_atomic
from surd.options import config, option
from surd.sources.rows import make_row
from surd.sources.tables import columns

IMAGE_COLUMNS = ("image", "img", "jpg", "jpeg", "png", "webp")
PROMPT_COLUMNS = ("prompt", "complex_prompt", "caption", "text", "TEXT", "txt", "Prompt")
ID_COLUMNS = ("__key__", "key", "id", "image_id", "source_id")
SPOOL_DIR = "hf"


_COLUMNS = columns(image_col=("", "'' = the first Image feature, else image, img, jpg, ..."),
                   prompt_col=("", "'' = prompt, complex_prompt, caption, text, ..."), negative_col="negative_prompt",
                   simple_col="", id_col=("", "'' = __key__, key, id, ...; else <split>/<row number>"))


@config
class Config(_COLUMNS):
    """Which dataset, config and splits to read, and which columns hold the image, prompts and id."""

    path: str = option("", cli=False,
                      help='A hub dataset name (user/dataset), a save_to_disk folder, or a data folder or file `datasets` reads.')
    name: str = option("", help="The dataset's config name ('' = its default).")
    split: str = option("", help="Split(s) to read, comma-separated ('' = every split).")
    revision: str = option("", help="Hub branch, tag or commit ('' = main).")
    streaming: bool = option(True,
                            help='Stream from the hub (nothing downloaded ahead); local folders are read in place.')
    spool_images: int = option(1000, help='Images per spooled tar.', ge=1)
    source_name: str = option("hf", help='Source name recorded in each sample.')

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("hf needs a dataset: a hub name (user/dataset), a save_to_disk folder or a data folder")
        if self.spool_images < 1:
            raise ValueError(f"hf spool_images must be >= 1, got {self.spool_images}")

    def splits(self) -> list[str]:
        return [s.strip() for s in self.split.split(",") if s.strip()]


def _is_saved(path: str) -> bool:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, n)) for n in ("state.json",
                                                                                        "dataset_dict.json"))


def load(cfg: Config) -> dict[str, Any]:
    """{split: iterable dataset}, the asked splits in order (the error lists the dataset's own)."""
    datasets = require("datasets", "hf")  # optional extra: only this source needs it
    if _is_saved(cfg.path):
        found = datasets.load_from_disk(cfg.path)
        found = found if isinstance(found, datasets.DatasetDict) else {"train": found}
    else:
        found = datasets.load_dataset(cfg.path, cfg.name or None, revision=cfg.revision or None,
                                      streaming=cfg.streaming)
    missing = [s for s in cfg.splits() if s not in found]
    if missing:
        raise ValueError(f"split(s) {missing} not in {cfg.path}; its splits: {', '.join(found)}")
    return {s: found[s] for s in (cfg.splits() or list(found))}


def _pick(explicit: str, candidates: tuple[str, ...], columns: list[str], what: str, cfg: Config) -> str:
    if explicit:
        if explicit not in columns:
            raise ValueError(f"column {explicit!r} not in {cfg.path} (columns: {', '.join(columns)})")
        return explicit
    found = next((c for c in candidates if c in columns), "")
    if not found and what != "id":
        raise ValueError(f"no {what} column in {cfg.path} (columns: {', '.join(columns)}): "
                         f"pass --{what}-col NAME")
    return found


def columns(ds: Any, cfg: Config) -> tuple[str, str, str]:
    """(image, prompt, id) column names of one split; id is "" when the dataset has none."""
    datasets = require("datasets", "hf")
    features = ds.features or {}
    names = list(features) or list(ds.column_names or [])
    images = [c for c, f in features.items() if isinstance(f, datasets.Image)]
    image = _pick(cfg.image_col, tuple(images) + IMAGE_COLUMNS, names, "image", cfg)
    return image, _pick(cfg.prompt_col, PROMPT_COLUMNS, names, "prompt", cfg), _pick(cfg.id_col, ID_COLUMNS,
                                                                                       names, "id", cfg)


def _undecoded(ds: Any, image_col: str) -> Any:
    """The split with its image column as {bytes, path} (no pixel is decoded while listing)."""
    datasets = require("datasets", "hf")
    feature = (ds.features or {}).get(image_col)
    return ds.cast_column(image_col, datasets.Image(decode=False)) if isinstance(feature, datasets.Image) else ds


def _image(value: Any) -> tuple[bytes | None, str, str]:
    """(bytes, path, problem) of one image cell: bytes, {bytes, path}, or a path string."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path") or ""
        return (bytes(data) if data else None), str(path), "" if data or path else "neither bytes nor a path"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (bytes(value) or None), "", "" if value else "empty bytes"
    if isinstance(value, str) and value.strip():
        return None, value, ""
    return None, "", f"a {type(value).__name__} is not an image (bytes, {{bytes, path}} or a path)"


def _plain(rec: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The row's other columns as json values; binary cells (other images, arrays of bytes) are left out."""
    out = {}
    for k, v in rec.items():
        if k in used or v is None or isinstance(v, (bytes, bytearray, memoryview)):
            continue
        try:
            out[k] = json.loads(json.dumps(v, default=str)) if isinstance(v, (dict, list)) else v
        except TypeError:  # bytes nested in a struct or list
            continue
    return json.loads(json.dumps(out, default=str))


class Spool:
    """Image bytes written into deterministic tars of at most *size* members; `add` returns each one's ref."""

    def __init__(self, directory: str, size: int):
        self.directory, self.size, self.count, self.members = directory, size, 0, 0
        self._buf: io.BytesIO | None = None
        self._tar: tarfile.TarFile | None = None

    def add(self, name: str, data: bytes) -> str:
        if self._tar is None:
            self._buf = io.BytesIO()
            self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.USTAR_FORMAT)
        info = tarfile.TarInfo(f"{self.members:06d}.img")  # mtime 0, root: the same bytes every run
        info.size, info.mode = len(data), 0o644
        self._tar.addfile(info, io.BytesIO(data))
        offset = self._tar.offset - -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE  # data start
        ref = tar_ref(self.path(), offset, len(data), f"{name} (spooled as {info.name})")
        self.members += 1
        if self.members == self.size:
            self.flush()
        return ref

    def path(self) -> str:
        return storage.join(self.directory, f"{self.count:05d}.tar")

    def flush(self) -> None:
        """Write the open tar (the refs handed out for it become readable)."""
        if self._tar is None:
            return
        self._tar.close()
        write_bytes_atomic(self.path(), self._buf.getvalue())  # type: ignore[union-attr]
        self.count, self.members, self._tar, self._buf = self.count + 1, 0, None, None


def _row(cfg: Config, rec: dict[str, Any], split: str, i: int, cols: tuple[str, str, str], spool: Spool,
         ) -> dict[str, Any]:
    image_col, prompt_col, id_col = cols
    sid = str(rec.get(id_col)) if id_col and rec.get(id_col) not in (None, "") else f"{split}/{i}"
    data, path, problem = _image(rec.get(image_col))
    prompt = rec.get(prompt_col)
    error, detail = ("missing_image", f"{image_col!r}: {problem}") if problem else (None, "")
    if error is None and not isinstance(prompt, str):
        error, detail = "missing_caption", f"{prompt_col!r} is {type(prompt).__name__}, not text"
    ref = "" if error else spool.add(sid, data) if data else path
    used = {image_col, prompt_col, cfg.negative_col, cfg.simple_col, id_col}
    negative, simple = rec.get(cfg.negative_col), rec.get(cfg.simple_col) if cfg.simple_col else None
    url = rec.get("url") if isinstance(rec.get("url"), str) else ""
    return make_row(
        source=cfg.source_name, source_id=sid, image=ref, complex_prompt=prompt if isinstance(prompt, str) else None,
        negative_prompt=negative if isinstance(negative, str) else "",
        simple_prompt=simple if isinstance(simple, str) and simple.strip() else None, url=url,
        provenance={"format": "hf", "dataset": cfg.path, "config": cfg.name, "split": split, "row": i,
                    "revision": cfg.revision, "image_path": path, "metadata": _plain(rec, used)},
        error=error, error_detail=detail,
    )


def list_rows(cfg: Config, state_dir: str, append: bool = False) -> Iterator[dict[str, Any]]:
    """One row per dataset row, split by split; rows are yielded once the tar holding their image is written."""
    for split, ds in load(cfg).items():
        cols = columns(ds, cfg)
        spool = Spool(storage.join(state_dir, SPOOL_DIR, split), cfg.spool_images)
        storage.makedirs(spool.directory)
        pending: list[dict[str, Any]] = []
        for i, rec in enumerate(_undecoded(ds, cols[0])):
            before = spool.count
            pending.append(_row(cfg, rec, split, i, cols, spool))
            if spool.count != before:  # a tar was just written: its rows' refs are readable now
                yield from pending
                pending.clear()
        spool.flush()
        yield from pending
