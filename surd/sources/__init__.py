"""Source registry: where ingest rows come from (manifests, image folders, web APIs and pages, URL lists, existing
webdataset shards and Hugging Face datasets, several at once).

What a source module defines is the `Source` protocol below (checked for every registered source by the tests).
A source made of other sources (``multi``) also defines ``bind(cfg, build, load)``: `build_source_config` hands
it this registry's own functions, so it never imports the registry that names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from surd.registry import Registry

SOURCES = Registry("source", {
    "manifest": "surd.sources.manifest",
    "folder": "surd.sources.folder",
    "surd_folder": "surd.sources.folder",  # the name before every folder layout was read: old pipelines keep working
    "urls": "surd.sources.urls",
    "webdataset": "surd.sources.webdataset",
    "hf": "surd.sources.hf",
    "civitai": "surd.sources.civitai",
    "lexica": "surd.sources.lexica",
    "diffusiondb": "surd.sources.diffusiondb",
    "sdonline": "surd.sources.sdonline",
    "multi": "surd.sources.multi",
})


@runtime_checkable
class Source(Protocol):
    """A source module: where ingest's rows come from."""

    Config: type  # a frozen dataclass; ingest's ``path`` fills its ``path`` field, ``options`` the rest

    def list_rows(self, cfg: Any, state_dir: str, append: bool = False) -> Iterator[dict[str, Any]]:
        """Rows built with `make_row`, in a stable order, streamed (a list may not fit in memory); ``state_dir``
        (a path or URL, see `surd.storage`) persists across reruns. With `append` (``--append``) a web listing
        that had ended looks past its end again; a file or dataset is read whole as always (the planner keeps the
        rows it has not planned yet)."""
        ...


def list_sources() -> list[str]:
    """The registered source names."""
    return SOURCES.names()


def get_source(name: str) -> ModuleType:
    """Import and return the source module for *name*; the error lists the valid names."""
    return SOURCES.load(name)


def build_source_config(name: str, path: str, options: dict[str, Any]) -> Any:
    """The source's Config from ingest's ``path`` + ``options``; unknown option names are listed in the error."""
    module = get_source(name)
    fields = {f.name for f in dataclasses.fields(module.Config) if f.init}
    values = dict(options or {})
    if "path" in fields and path:
        values.setdefault("path", path)
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for source {name!r}; valid: {', '.join(sorted(fields))}")
    cfg = module.Config(**values)
    bind = getattr(module, "bind", None)
    return bind(cfg, build_source_config, get_source) if bind else cfg
