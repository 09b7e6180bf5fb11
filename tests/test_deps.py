"""Optional heavy dependencies: imported on use, with the exact install command when missing."""

from __future__ import annotations

import pytest

from surd.deps import require


def test_require_returns_the_module_or_names_the_extra_to_install():
    assert require("json", "core").dumps([1]) == "[1]"
    with pytest.raises(ImportError, match=r"pip install 'surd\[clip\]'") as info:
        require("surely_not_a_module_surd", "clip")
    assert isinstance(info.value.__cause__, ImportError)
