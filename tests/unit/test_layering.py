"""The arrows of DESIGN.md point one way: each package imports alone, without what it must not know."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = {
    "moemix.mixing": ["torch", "transformers", "moemix.data", "moemix.routing", "moemix.train", "torch.distributed"],
    "moemix.routing": ["moemix.data", "moemix.train", "moemix.mixing"],
    "moemix.data": ["moemix.routing", "moemix.train", "moemix.models"],
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_alone(package):
    code = f"import sys, {package}; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split())
    wrong = [m for m in FORBIDDEN[package] if m in loaded]
    assert not wrong, f"{package} imports {wrong}"
