"""The CLI's recipe: the only place (with ``moemix.integrations``) where data, routing and mixing meet.

The public names load on first use, so that the pure parts of this package (``policies``, which ``moemix replay``
uses) import without torch and transformers.
"""

from importlib import import_module

_PUBLIC = {
    "MixingCallback": "moemix.train.callback",
    "probe_loads": "moemix.train.callback",
    "PreparedRun": "moemix.train.prepared",
    "RunResult": "moemix.train.prepared",
    "prepare_run": "moemix.train.run",
    "run_training": "moemix.train.run",
    "MixtureTrainer": "moemix.train.trainer",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
