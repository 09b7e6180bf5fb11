"""Several sources in one ingest: each entry lists its own rows, with its own options, item budget and state folder.

In a pipeline::

    source: multi
    options:
      sources:
        - {source: civitai, max_items: 40000, options: {base_models: ["SD 1.5"]}}
        - {source: lexica, name: lexica_art, max_items: 20000, options: {queries: [...]}}
        - {source: folder, path: my_collected/}

Entries are listed in order into one stage output. Each keeps its own state in ``_state/<name>/`` (``name``
defaults to the source; two entries of one source need names). Keys stay a hash of (source, source id), so they
are unique per source; the same image bytes from two sources are dropped by ingest's global sha256 pass
(``duplicate_image``), the same (source, id) listed twice is ``duplicate_key``.

The sub-sources are looked up through the registry that lists this one, which `bind` receives from
`surd.sources.build_source_config` (so this module never imports the registry that names it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from types import ModuleType
from typing import Any

from surd import storage

ENTRY_KEYS = ("source", "name", "path", "options", "max_items")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Entry:
    """One source of the list, validated; ``config`` is the source's own Config."""

    name: str
    source: str
    max_items: int
    config: Any


@dataclass(frozen=True)
class Config:
    """``sources``: a list of ``{source, name, path, options, max_items}`` mappings (see the module docstring)."""

    sources: tuple[dict[str, Any], ...] = ()
    # Filled by `bind`, not options: each entry's own Config, and the registry's loader.
    entries: tuple[Entry, ...] = field(default=(), init=False, compare=False, repr=False)
    load: Callable[[str], ModuleType] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources or ()))
        if not self.sources:
            raise ValueError("source multi needs a `sources:` list of {source, path, options, max_items} entries")
        names: set[str] = set()
        for i, entry in enumerate(self.sources):
            if not isinstance(entry, dict) or "source" not in entry:
                raise ValueError(f"sources[{i}] must be a mapping with a `source:` key (and path, options, max_items)")
            unknown = sorted(set(entry) - set(ENTRY_KEYS))
            if unknown:
                raise ValueError(f"sources[{i}] ({entry['source']}): unknown key(s) {unknown}; allowed: "
                                 f"{', '.join(ENTRY_KEYS)} (the source's own settings go under options:)")
            name = str(entry.get("name") or entry["source"])
            if not _NAME.match(name):
                raise ValueError(f"sources[{i}]: name {name!r} must be letters, digits, '_', '.', '-' (a folder name)")
            if name in names:
                raise ValueError(f"sources[{i}]: two entries are named {name!r}: give each its own `name:` "
                                 "(it names the entry's state folder)")
            names.add(name)
            if not isinstance(entry.get("max_items", 0), int) or entry.get("max_items", 0) < 0:
                raise ValueError(f"sources[{i}] ({name}): max_items must be an integer >= 0 (0 = no limit)")


def bind(cfg: Config, build: Callable[[str, str, dict[str, Any]], Any], load: Callable[[str], ModuleType]) -> Config:
    """Build and check every entry's own Config with the registry's *build* / *load* (errors name the entry)."""
    entries = []
    for i, e in enumerate(cfg.sources):
        name, source = str(e.get("name") or e["source"]), str(e["source"])
        if source == "multi":
            raise ValueError(f"sources[{i}]: a multi source cannot hold another; list its entries here instead")
        try:
            sub = build(source, str(e.get("path") or ""), dict(e.get("options") or {}))
        except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
            msg = err.args[0] if isinstance(err, KeyError) and err.args else err
            raise type(err)(f"ingest sources[{i}] ({name}): {msg}") from err
        entries.append(Entry(name, source, int(e.get("max_items") or 0), sub))
    bound = Config(sources=cfg.sources)
    object.__setattr__(bound, "entries", tuple(entries))  # frozen: set once, here
    object.__setattr__(bound, "load", load)
    return bound


def list_rows(cfg: Config, state_dir: str, append: bool = False) -> Iterator[dict[str, Any]]:
    """Every entry's rows in list order, each entry cut at its ``max_items`` (`append` is passed on to each)."""
    if cfg.load is None:
        raise ValueError("a multi source's Config is built by surd.sources.build_source_config (which binds it)")
    for entry in cfg.entries:
        sub_state = storage.join(state_dir, entry.name)  # a path or a URL (surd.storage)
        storage.makedirs(sub_state)
        rows = cfg.load(entry.source).list_rows(entry.config, sub_state, append=append)
        yield from islice(rows, entry.max_items) if entry.max_items else rows
