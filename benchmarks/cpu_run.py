"""The run that the CPU step-time benchmarks (``routing_overhead.py``, ``trainer_parity.py``) train, and the
clock they time optimizer steps with.

One tiny Mixtral (hidden 128, 4 layers, 8 experts top-2, as ``moemix demo``) on the four builtin domains, batch
8, ``max_length`` 128, the dynamic mixture updated every 100 steps from 5 dev batches of 8 per dataset. A module,
not a script: the benchmarks beside it import it.
"""

import statistics
import time

from transformers import TrainerCallback


class StepClock(TrainerCallback):
    """Timestamps (wall and CPU) the end of every optimizer step, after the callbacks added before it."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())


def trained(text: str, overrides: list[str], skip: int):
    """Prepare the run of a config text with overrides, train it, and time its optimizer steps.

    Returns:
        ``(prepared, step)``: the :func:`moemix.train.prepare_run` result after training, and the mean CPU seconds
        of its steps after the first ``skip`` of them.
    """
    from moemix.config import load_config
    from moemix.train import prepare_run

    prepared = prepare_run(load_config(text=text, overrides=overrides))
    clock = StepClock()
    prepared.trainer.add_callback(clock)
    prepared.trainer.train()
    return prepared, statistics.mean(b - a for a, b in zip(clock.cpu[skip - 1 :], clock.cpu[skip:]))


CONFIG = """
seed: 42
max_length: 128
eval_batches: 1
datasets:
  - {name: dialogue, path: "builtin:dialogue"}
  - {name: nlp, path: "builtin:nlp"}
  - {name: math, path: "builtin:math"}
  - {name: code, path: "builtin:code"}
model:
  tiny: mixtral
  tokenizer: builtin
  vocab_size: 2048
  tiny_config: {hidden_size: 128, intermediate_size: 256, num_hidden_layers: 4, num_attention_heads: 4,
                num_key_value_heads: 2, num_local_experts: 8, num_experts_per_tok: 2}
mixing: {policy: dynamic, interval: 100, probe_batches: 5, probe_batch_size: 8}
training:
  per_device_train_batch_size: 8
  per_device_eval_batch_size: 8
  learning_rate: 0.001
  disable_tqdm: true
  logging_strategy: "no"
  dataloader_num_workers: 0
"""
