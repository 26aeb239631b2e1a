"""Every YAML under configs/ loads and validates; configs/demo.yaml is the embedded default."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from moemix.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path):
    config = load_config(path)
    assert len(config.datasets) >= 2


def test_demo_config_is_the_embedded_default():
    embedded = resources.files("moemix").joinpath("demo.yaml").read_text(encoding="utf-8")
    repo = (Path(__file__).resolve().parents[2] / "configs" / "demo.yaml").read_text(encoding="utf-8")
    assert load_config(text=embedded) == load_config(text=repo)
