"""The tests' shorthand for a ModelConfig: fields and the mixer's options in one keyword list."""

import dataclasses

from jaxdp.models import ModelConfig

FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}


def make_config(**given) -> ModelConfig:
    """``make_config(mixer="sparse", dim=32, block_size=4, ...)``: the keywords that are not
    ModelConfig fields go into ``options``."""
    options = {**(given.pop("options", None) or {}), **{k: given.pop(k) for k in list(given) if k not in FIELDS}}
    return ModelConfig(**given, options=options)
