"""The schema is the one definition of each setting: documented, defaulted and named once."""

from __future__ import annotations

import dataclasses

import pytest

from moemix import config as schema
from moemix import mixing
from moemix.config import CRITERIA, DISTANCES, POLICY_NAMES, MixingConfig, field_docs
from moemix.errors import ConfigError
from moemix.train.policies import policy_knobs

SECTIONS = [
    schema.Config,
    schema.DatasetConfig,
    schema.DataConfig,
    schema.ModelConfig,
    schema.UpcycleConfig,
    schema.LoraConfig,
    schema.MixingConfig,
]


def test_the_name_lists_are_the_ones_mixing_implements():
    # config may import nothing of moemix but errors, so it spells the names out; they must stay the same.
    assert POLICY_NAMES == tuple(mixing.POLICIES)
    assert DISTANCES == mixing.DISTANCES
    assert CRITERIA == mixing.CRITERIA


@pytest.mark.parametrize("section", SECTIONS, ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(section):
    docs = field_docs(section)
    missing = [f.name for f in dataclasses.fields(section) if not docs.get(f.name)]
    assert not missing


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_policies_leave_the_configs_knobs_to_the_config(name):
    # A knob a policy shares with the mixing section has no default of its own: the config's is the only one.
    settings = {f.name for f in dataclasses.fields(MixingConfig)}
    shared = [f for f in dataclasses.fields(mixing.POLICIES[name]) if f.init and f.name in settings - {"weights"}]
    defaulted = [f.name for f in shared if f.default is not dataclasses.MISSING]
    assert not defaulted


@pytest.mark.parametrize("name", ["dynamic", "embedding", "refloss", "odm", "datasize"])
def test_policy_knobs_come_from_the_config(name):
    mixing_config = MixingConfig(policy=name, eta=3.0, c=0.2, distance="js", criterion="max", odm_alpha=0.5)
    knobs = policy_knobs(mixing_config)
    expected = {
        "dynamic": {"eta": 3.0, "c": 0.2, "distance": "js", "criterion": "max", "noise_aware": False, "noise_z": 1.0},
        "embedding": {"eta": 3.0, "c": 0.2, "distance": "js", "criterion": "max"},
        "refloss": {"eta": 3.0, "c": 0.2},
        "odm": {"alpha": 0.5},
        "datasize": {"by": "examples"},
    }[name]
    assert knobs == expected


def test_rules_sit_beside_their_fields():
    eta = next(f for f in dataclasses.fields(MixingConfig) if f.name == "eta")
    assert schema.Range(low=0.0) in eta.metadata["rules"]
    assert schema.choices(next(f for f in dataclasses.fields(MixingConfig) if f.name == "distance")) == DISTANCES


def test_a_config_built_in_code_is_checked_by_the_same_rules():
    config = schema.Config(
        datasets=[schema.DatasetConfig(name="a", path="a"), schema.DatasetConfig(name="b", path="b")],
        model=schema.ModelConfig(tiny="mixtral", tokenizer="builtin"),
        mixing=MixingConfig(c=2.0),
    )
    with pytest.raises(ConfigError, match=r"<config>: mixing.c: must be in \[0, 1\], got 2.0"):
        schema.validate(config)
