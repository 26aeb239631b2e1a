"""Hugging Face Trainer integration: the only place where data, routing and mixing meet."""

from moemix.train.callback import MixingCallback, probe_loads
from moemix.train.run import PreparedRun, RunResult, prepare_run, run_training
from moemix.train.trainer import MixtureTrainer

__all__ = ["MixingCallback", "MixtureTrainer", "PreparedRun", "RunResult", "prepare_run", "probe_loads", "run_training"]
