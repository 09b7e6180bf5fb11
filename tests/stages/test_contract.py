"""Every registered stage and source conforms to the contract the runner and ingest call (surd.stages.contract)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from surd.sources import SOURCES, Source, get_source
from surd.stages import STAGES, get_stage
from surd.stages.contract import FinalizingStage, SourceStage, Stage, missing_members


@pytest.mark.parametrize("name", STAGES.names())
def test_stage_conforms(name):
    module = get_stage(name)
    assert isinstance(module, Stage) and not missing_members(module)
    assert module.NAME == name, "NAME is the registry name (output folder NN_<NAME>, json stages[NAME])"
    assert isinstance(module.USES_GPU, bool)
    assert dataclasses.is_dataclass(module.Config) and module.Config.__dataclass_params__.frozen
    assert list(inspect.signature(module.run).parameters) == ["samples", "cfg"]
    assert isinstance(module.versions(), dict)
    if isinstance(module, SourceStage):
        assert list(inspect.signature(module.plan).parameters) == ["cfg", "state_dir", "append"]
    if isinstance(module, FinalizingStage):
        assert list(inspect.signature(module.finalize).parameters) == ["output_dir", "cfg"]


def test_the_protocols_tell_stages_apart():
    assert isinstance(get_stage("ingest"), SourceStage) and isinstance(get_stage("ingest"), FinalizingStage)
    assert not isinstance(get_stage("caption"), SourceStage)
    assert missing_members(object()) == ["NAME", "USES_GPU", "Config", "run", "versions"]


def test_a_module_missing_part_of_the_contract_is_refused(monkeypatch):
    monkeypatch.setitem(STAGES, "not_a_stage", "surd.sample")
    with pytest.raises(TypeError, match="lacks NAME, USES_GPU, Config, run, versions"):
        get_stage("not_a_stage")


@pytest.mark.parametrize("name", SOURCES.names())
def test_source_conforms(name):
    module = get_source(name)
    assert isinstance(module, Source)
    assert dataclasses.is_dataclass(module.Config) and module.Config.__dataclass_params__.frozen
    assert list(inspect.signature(module.list_rows).parameters)[:2] == ["cfg", "state_dir"]
    append = inspect.signature(module.list_rows).parameters.get("append")  # --append reaches every source
    assert append is not None and append.default is False
