"""A short soak: resident memory must not grow while tracking (the long run: scripts/soak.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_memory_does_not_grow():
    path = Path(__file__).resolve().parents[1] / "scripts" / "soak.py"
    spec = importlib.util.spec_from_file_location("soak", path)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    r = soak.soak(3000)
    assert r["growth_mb"] < 5.0, r
