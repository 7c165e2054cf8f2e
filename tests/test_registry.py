"""Plugin files: the Backend and Task subclasses they define are registered; helper base classes are not."""

from __future__ import annotations

import pytest

from mlpbench.registry import PluginError, discover, load_plugin_file

HELPERS = '''
from abc import abstractmethod

from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench import Backend


class _Shared(NumpyMLP):
    """Private: a base the real backends share."""

    name = "shared"


class AbstractBase(NumpyMLP):
    """Abstract: cannot be built."""

    @abstractmethod
    def twist(self): ...


class Nameless(Backend):
    """No `name`: a base for backends that set their own."""

    def build(self, spec, weights, seed): ...
    def train_epoch(self, X, y, batches): ...
    def predict(self, X): ...
    def get_weights(self): ...
'''

REAL = """

class Real(_Shared):
    name = "real"


class Twisted(AbstractBase):
    name = "twisted"

    def twist(self):
        return 1
"""


def test_helper_base_classes_in_a_plugin_file_are_not_registered(tmp_path) -> None:
    plugin = tmp_path / "with_helpers.py"
    plugin.write_text(HELPERS + REAL)
    entries = load_plugin_file(plugin)
    assert sorted(e.name for e in entries) == ["real", "twisted"]
    assert {e.kind for e in entries} == {"backend"}
    reg = discover([plugin])
    assert {"real", "twisted"} <= set(reg.backends) and "shared" not in reg.backends
    assert reg.backends["numpy"].source == "built-in"  # no helper class replaced a built-in


def test_a_plugin_file_with_only_helper_classes_is_an_error(tmp_path) -> None:
    plugin = tmp_path / "only_helpers.py"
    plugin.write_text(HELPERS)
    with pytest.raises(PluginError, match="defines no Backend or Task subclass") as info:
        load_plugin_file(plugin)
    assert "not registered: _Shared, AbstractBase, Nameless (private, abstract or without a `name`)" in str(info.value)


def test_a_plugin_file_without_any_subclass_is_an_error(tmp_path) -> None:
    plugin = tmp_path / "nothing.py"
    plugin.write_text("X = 1\n")
    with pytest.raises(PluginError, match=r"defines no Backend or Task subclass \(subclass mlpbench.Backend") as info:
        load_plugin_file(plugin)
    assert "not registered" not in str(info.value)
