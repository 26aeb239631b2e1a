"""A run the recipe has built and not yet trained: train it, then write its metrics, mixture state and model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moemix.config import Config
from moemix.data.sampler import MixtureSampler
from moemix.files import write_json_atomic
from moemix.train.budget import TokenTotals
from moemix.train.callback import MixingCallback
from moemix.train.distributed import whole_parameters
from moemix.train.evaluate import dev_losses
from moemix.train.folder import RunFolder
from moemix.train.state import MixtureState
from moemix.train.trainer import MixtureTrainer


@dataclass
class RunResult:
    """What a finished run produced."""

    output_dir: Path
    metrics: dict
    names: list[str]
    initial_weights: dict[str, float]
    updates: int


@dataclass
class PreparedRun:
    """Everything built for a run, before training: add callbacks to ``trainer`` here, then ``train()``.

    The run holds its output folder's lock (see :class:`moemix.train.folder.RunFolder`) until ``train()`` ends.
    """

    config: Config
    trainer: MixtureTrainer
    sampler: MixtureSampler
    callback: MixingCallback
    mixture: MixtureState
    names: list[str]
    initial_weights: np.ndarray
    eval_batches: dict[str, list]
    started: float
    tokens: TokenTotals
    folder: RunFolder
    resume: Path | None = None

    def train(self) -> RunResult:
        """Train, then write ``metrics.json``, ``mixture_state.json`` and the model into the run folder.

        A run that fails before its first optimizer step removes the output folder if it created it.
        """
        trainer, names, out = self.trainer, self.names, Path(self.config.output_dir)
        try:
            with whole_parameters(trainer.model):  # ZeRO-3 before its engine exists: gather for this forward
                initial_loss = dev_losses(trainer.model, self.eval_batches)
            train_output = trainer.train(resume_from_checkpoint=str(self.resume) if self.resume else None)
        except BaseException:
            if trainer.state.global_step == 0:
                self.folder.abandon()
            self.folder.release()
            raise
        try:
            final_loss = dev_losses(trainer.model, self.eval_batches)
            tokens = self.tokens.sum_over_ranks().tolist()  # every rank's tokens, not only this rank's
            metrics = {f"eval/{name}/loss": final_loss[name] for name in names}
            metrics |= {f"eval_initial/{name}/loss": initial_loss[name] for name in names}
            metrics |= {
                "eval/mean_loss": float(np.mean([final_loss[n] for n in names])),
                "weights": {name: float(w) for name, w in zip(names, self.sampler.weights)},
                "initial_weights": {name: float(w) for name, w in zip(names, self.initial_weights)},
                "tokens_seen": {name: int(t) for name, t in zip(names, tokens)},
                "draws": {name: int(c) for name, c in zip(names, self.sampler.counts)},
                "train_loss": float(trainer.mean_train_loss(train_output.training_loss)),
                "global_step": int(trainer.state.global_step),
                "updates": len(self.callback.history),
                "max_tokens": self.config.max_tokens,
                "wall_time_s": round(time.perf_counter() - self.started, 2),
            }
            if self.config.save_model:
                trainer.save_model(str(out / "model"))  # on every rank: DeepSpeed ZeRO-3 gathers the weights
            if trainer.is_world_process_zero():
                write_json_atomic(out / "mixture_state.json", self.mixture_state())
                write_json_atomic(out / "metrics.json", metrics)
                if self.callback.history:
                    from moemix.report import plot_run  # matplotlib only when a run plots: fast starts

                    plot_run(out)
        finally:
            self.folder.release()
        initial = {n: float(w) for n, w in zip(names, self.initial_weights)}
        return RunResult(out, metrics, names, initial, len(self.callback.history))

    def mixture_state(self) -> dict:
        """The mixture's state as a checkpoint holds it (see :class:`MixtureState`), less the loss sum that
        only a checkpoint taken during training needs."""
        state = self.mixture.state_dict()
        state.pop("train_loss_sum")
        return state
