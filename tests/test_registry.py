"""One registry helper (surd.registry) behind every name → implementation table."""

from __future__ import annotations

import importlib

import pytest

from surd.registry import Registry, canonical


@pytest.mark.parametrize("registry", ["surd.stages:STAGES", "surd.sources:SOURCES", "surd.executors:EXECUTORS",
                                      "surd.pipeline:JOBS", "surd.fetch:FETCHERS"])
def test_registries_share_one_helper_and_name_real_code(registry):
    module, _, attr = registry.partition(":")
    reg = getattr(importlib.import_module(module), attr)
    assert isinstance(reg, Registry)
    for name in reg.names():
        assert reg.load(name) is not None
    with pytest.raises(KeyError, match="valid"):
        reg.load("no-such-thing")


def test_names_are_canonical_and_entries_can_be_added():
    reg = Registry("widget", {"clip-filter": "json:dumps"})
    assert canonical(" clip-filter ") == "clip_filter" and "clip_filter" in reg and "clip-filter" in reg
    assert reg.load("clip-filter") is importlib.import_module("json").dumps
    reg["my_widget"] = "json"
    assert reg.names() == ["clip_filter", "my_widget"] and reg.load("my-widget").__name__ == "json"
    with pytest.raises(KeyError, match="unknown widget 'nope'; valid widgets: clip_filter, my_widget"):
        reg.resolve("nope")
    with pytest.raises(ValueError, match="package.module"):
        reg["bad"] = ""
