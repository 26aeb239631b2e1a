"""The one config schema: annotated dataclasses, one docstring per field, loaded from YAML with overrides.

``schema`` and the section modules (``data``, ``model``, ``mixing``) define every setting once: its type,
default, rules and meaning. ``loader`` reads YAML and command-line overrides into them (``convert`` turns each
value into its field's type). This package imports nothing of moemix but :mod:`moemix.errors`.
"""

from moemix.config.convert import Raw, closest, training_argument_names, training_fields
from moemix.config.data import CLEAN_UP, FIELDS, FORMATS, TRUNCATIONS, DataConfig, DatasetConfig, template_fields
from moemix.config.docs import field_docs
from moemix.config.files import DATA_SUFFIXES, data_suffix, expand_each_file
from moemix.config.loader import (
    Where,
    check_override_key,
    dump_config,
    load_config,
    load_section,
    parse_overrides,
    where_set,
)
from moemix.config.mixing import CRITERIA, DISTANCES, POLICY_NAMES, MixingConfig
from moemix.config.model import UPCYCLE_MODES, LoraConfig, ModelConfig, UpcycleConfig
from moemix.config.rules import OneOf, Range, check_section, choices, setting
from moemix.config.schema import TRAINING_RULES, Config, validate

__all__ = [
    "CLEAN_UP",
    "CRITERIA",
    "DATA_SUFFIXES",
    "DISTANCES",
    "FIELDS",
    "FORMATS",
    "POLICY_NAMES",
    "TRUNCATIONS",
    "TRAINING_RULES",
    "UPCYCLE_MODES",
    "Config",
    "DataConfig",
    "DatasetConfig",
    "LoraConfig",
    "MixingConfig",
    "ModelConfig",
    "OneOf",
    "Range",
    "Raw",
    "UpcycleConfig",
    "Where",
    "check_override_key",
    "check_section",
    "choices",
    "closest",
    "data_suffix",
    "dump_config",
    "expand_each_file",
    "field_docs",
    "load_config",
    "load_section",
    "parse_overrides",
    "setting",
    "template_fields",
    "training_argument_names",
    "training_fields",
    "validate",
    "where_set",
]
