"""The instance's qwen3vl-modelcache script, imported as a module for tests and the bench."""

from __future__ import annotations

import importlib.util
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "userdata" / "bin" / "qwen3vl-modelcache"


def load() -> ModuleType:
    """A fresh module object from the script that the instance runs (same file, no copy)."""
    loader = SourceFileLoader("qwen3vl_modelcache", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
