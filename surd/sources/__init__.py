"""Source registry: where ingest rows come from (manifests, the SURD folder layout, web APIs and pages, URL lists).

A source module defines a frozen dataclass ``Config`` and ``list_rows(cfg, state_dir) -> Iterator[dict]``
yielding rows built with `make_row`. ``state_dir`` persists across reruns (cursors, listed pages).
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

SOURCES: dict[str, str] = {
    "manifest": "surd.sources.manifest",
    "surd_folder": "surd.sources.surd_folder",
    "urls": "surd.sources.urls",
    "civitai": "surd.sources.civitai",
    "lexica": "surd.sources.lexica",
    "diffusiondb": "surd.sources.diffusiondb",
    "sdonline": "surd.sources.sdonline",
}


def list_sources() -> list[str]:
    return sorted(SOURCES)


def get_source(name: str) -> ModuleType:
    key = name.strip().replace("-", "_")
    if key not in SOURCES:
        raise KeyError(f"unknown source {name!r}; valid sources: {', '.join(list_sources())}")
    return importlib.import_module(SOURCES[key])


def build_source_config(name: str, path: str, options: dict[str, Any]) -> Any:
    """The source's Config from ingest's ``path`` + ``options``; unknown option names are listed in the error."""
    module = get_source(name)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    values = dict(options or {})
    if "path" in fields and path:
        values.setdefault("path", path)
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for source {name!r}; valid: {', '.join(sorted(fields))}")
    return module.Config(**values)


def make_row(*, source: str, source_id: str, image: str, complex_prompt: str | None, negative_prompt: str | None = "",
             simple_prompt: str | None = None, url: str = "", license: str = "", provenance: Any = None,
             nsfw: Any = None, extra: dict[str, Any] | None = None, error: str | None = None,
             error_detail: str = "") -> dict[str, Any]:
    """One ingest row. ``error`` (a reject reason) marks a row already rejected at listing time."""
    return {
        "source": str(source), "source_id": str(source_id), "image": image,
        "complex_prompt": complex_prompt, "negative_prompt": negative_prompt or "", "simple_prompt": simple_prompt,
        "url": url or "", "license": license or "", "provenance": provenance, "nsfw": nsfw,
        "extra": extra or {}, "error": error, "error_detail": error_detail,
    }
