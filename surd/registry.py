"""Name → implementation tables (stages, sources, executors, jobs, fetchers), all of one shape.

Each entry is a dotted target string, ``"surd.stages.ingest"`` (a module) or ``"surd.executors.local:LocalExecutor"``
(an attribute of a module), imported only when asked for, so heavy dependencies load only when used. Names are
canonical snake_case: ``clip-filter`` and ``clip_filter`` name the same entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any


def canonical(name: str) -> str:
    """``'clip-filter'`` and ``' clip_filter '`` → ``'clip_filter'``."""
    return str(name).strip().replace("-", "_")


class Registry(MutableMapping[str, str]):
    """A table of ``name → "module[:attribute]"``; `load(name)` imports and returns the implementation.

    ``registry["my_stage"] = "mypkg.my_stage"`` adds an entry (a plugin, or a test's own stage).
    """

    def __init__(self, kind: str, targets: Mapping[str, str]) -> None:
        self.kind = kind  # what an entry is, for error messages: "stage", "source", ...
        self._targets = {canonical(k): v for k, v in targets.items()}

    def __getitem__(self, name: str) -> str:
        return self._targets[canonical(name)]

    def __setitem__(self, name: str, target: str) -> None:
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"a {self.kind} is registered as 'package.module' or 'package.module:attribute'")
        self._targets[canonical(name)] = target

    def __delitem__(self, name: str) -> None:
        del self._targets[canonical(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical(name) in self._targets

    def names(self) -> list[str]:
        """The valid names, sorted."""
        return sorted(self._targets)

    def resolve(self, name: str) -> str:
        """The canonical name for *name*; the error lists every valid name."""
        key = canonical(name)
        if key not in self._targets:
            raise KeyError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}")
        return key

    def load(self, name: str) -> Any:
        """Import and return the module (or the module's attribute) registered under *name*."""
        module, _, attr = self._targets[self.resolve(name)].partition(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, attr) if attr else loaded
