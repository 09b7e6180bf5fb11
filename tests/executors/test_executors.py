"""Executors by name (surd.executors): the registry, the protocol every executor follows, and bad arguments."""

from __future__ import annotations

import pytest

from surd.executors import EXECUTORS, get_executor
from surd.executors.local import LocalExecutor


def test_executors_by_name_and_their_errors():
    assert EXECUTORS.names() == ["local", "ray"]
    assert isinstance(get_executor("local", workers=2), LocalExecutor)
    with pytest.raises(KeyError, match="unknown executor 'slurm'; valid executors: local, ray"):
        get_executor("slurm")
    with pytest.raises(ValueError, match="workers must be >= 1"):
        get_executor("local", workers=0)
    with pytest.raises(ValueError, match="--address is for --executor ray"):
        get_executor("local", address="auto")
