"""The ``mixing:`` section: every knob of every mixing policy, defined (default, rule, meaning) here only.

The policies of :mod:`moemix.mixing` take these values as required arguments: a config run, ``moemix replay``
and ``moemix compare`` all build them from this dataclass (see :mod:`moemix.train.policies`), so a default
lives in one place. The name lists below are the ones :mod:`moemix.mixing` implements; a test keeps them equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from moemix.config.rules import OneOf, Range, Where, join, setting
from moemix.errors import ConfigError

POLICY_NAMES = (
    "uniform",
    "static",
    "datasize",
    "random",
    "cycle",
    "sequential",
    "dynamic",
    "embedding",
    "refloss",
    "odm",
)
"""The policies of ``moemix.mixing.POLICIES``."""
DISTANCES = ("l2", "cosine", "js")
"""The distances of ``moemix.mixing.DISTANCES``."""
CRITERIA = ("mean", "min", "max")
"""The criteria of ``moemix.mixing.CRITERIA``."""
SOURCES = ("probe", "online")
"""Where the gate loads come from."""
DATASIZE_BY = ("examples", "tokens")
"""What the ``datasize`` policy counts."""


@dataclass
class MixingConfig:
    """How the sampling weights of the datasets are chosen and updated."""

    policy: str = setting("dynamic", OneOf(POLICY_NAMES))
    """``dynamic`` (the paper's update from gate loads); baselines ``uniform``, ``static``, ``datasize``,
    ``random``, ``cycle``, ``sequential``, ``refloss`` (DoReMi-style reference loss), ``odm`` (online data
    mixing, EXP3 on training loss); ``embedding`` (the dynamic update on mean sentence embeddings)."""
    eta: float = setting(10.0, Range(low=0.0))
    """Step size of the ``dynamic``, ``embedding`` and ``refloss`` updates (>= 0)."""
    c: float = setting(0.05, Range(low=0.0, high=1.0))
    """Smoothing towards uniform in the ``dynamic``, ``embedding`` and ``refloss`` updates, in [0, 1]."""
    interval: int = setting(100, Range(low=1))
    """Optimizer steps between two updates (the paper's m)."""
    probe_batches: int = setting(5, Range(low=1))
    """Batches of each dataset's dev split run to collect its gate loads at an update."""
    probe_batch_size: int | None = setting(None, Range(low=1))
    """Examples per probe batch; default: ``training.per_device_eval_batch_size``."""
    weights: dict[str, float] | None = None
    """Weights by dataset name: the fixed weights of ``static``, the starting weights of ``dynamic``."""
    source: str = setting("probe", OneOf(SOURCES))
    """Where the gate loads come from: ``probe`` (the paper: ``probe_batches`` dev batches of each dataset at
    every update) or ``online`` (the routing of the window's training forward passes, attributed to datasets
    token by token: no extra forward pass)."""
    layers: str | int | list[int] = "last"
    """MoE layers whose routing is read: ``last`` (the paper), ``all``, an index or a list of indices among the
    MoE layers (negative from the end); the loads of several layers are concatenated per dataset."""
    count_prompt_tokens: bool = True
    """Count the routing of prompt (non-assistant) tokens too; ``false`` counts only the tokens that carry a loss.
    Padding never counts."""
    load_ema: float | None = setting(None, Range(low=0.0, high=1.0, high_open=True))
    """Smooth each dataset's normalised load across updates, ``load_ema * previous + (1 - load_ema) * new``, in
    [0, 1) (the weight of the previous loads); default off (the paper)."""
    freeze_router: bool = False
    """Freeze the router parameters of every MoE layer, as the paper trained; the experts (their ``gate_proj``
    included) stay trainable."""
    router_module: str | None = None
    """Module path pattern of the routers, for a model whose routers moemix does not find by itself: ``*``
    matches any index, e.g. ``model.layers.*.mlp.gate``; each module's forward must return the chosen experts."""
    distance: str = setting("l2", OneOf(DISTANCES))
    """Distance between two datasets' loads in ``dynamic`` / ``embedding``: ``l2`` (the paper), ``cosine``, ``js``."""
    criterion: str = setting("mean", OneOf(CRITERIA))
    """How a dataset's distances to the others become its score: ``mean`` (the paper), ``min`` or ``max``."""
    noise_aware: bool = False
    """``dynamic`` policy: the noise-aware update. At each update the sampling noise of every dataset's score
    D_i is estimated by a bootstrap over the measured units (probe examples, or groups of training sequences
    online), and each score's deviation from the mean is pulled towards 0 by ``noise_z`` standard errors before
    the paper's softmax: the weights move only as far as the routing signal stands above its noise. Default
    off: the paper's update."""
    noise_z: float = setting(1.0, Range(low=0.0))
    """With ``noise_aware``: how many standard errors of each score count as noise (>= 0; 0 is the paper's
    update)."""
    datasize_by: str = setting("examples", OneOf(DATASIZE_BY))
    """``datasize`` policy: weights proportional to ``examples`` or ``tokens`` of each training split."""
    weights_file: str | None = None
    """``static`` policy: a JSON file of weights by dataset name (or a run folder: its final weights)."""
    reference: str | None = None
    """``refloss`` policy: reference dev losses, a JSON file ``{name: loss}`` or a finished run folder (its
    final dev losses)."""
    odm_alpha: float = setting(0.9, Range(low=0.0, high=1.0, high_open=True))
    """``odm`` policy: smoothing of each dataset's reward across updates, in [0, 1)."""
    embedding_examples: int = setting(64, Range(low=1))
    """``embedding`` policy: training examples per dataset whose sentence embeddings are averaged."""
    floor: float = setting(0.0, Range(low=0.0, high=1.0))
    """Lowest weight any dataset may get (applied after every update, to every policy)."""
    ceiling: float = setting(1.0, Range(low=0.0, high=1.0))
    """Highest weight any dataset may get (applied after every update, to every policy)."""
    collapse_warning: float = setting(0.8, Range(low=0.0, high=1.0, low_open=True))
    """Warn when one dataset's weight passes this share after an update (e.g. 0.86 onto one dataset warns)."""

    def check(self, where: Where, prefix: str) -> None:
        """Rules across the section's fields (those that need the dataset names are in ``Config.check``)."""
        layers = self.layers
        if isinstance(layers, str) and layers not in ("last", "all"):
            raise ConfigError(
                f"{where(join(prefix, 'layers'))}: must be last, all, a MoE layer index or a list of them, "
                f"got {layers!r}"
            )
        if isinstance(layers, list) and (not layers or len(set(layers)) != len(layers)):
            raise ConfigError(
                f"{where(join(prefix, 'layers'))}: must be a non-empty list of distinct MoE layer indices, "
                f"got {layers!r}"
            )
        if self.router_module is not None and not self.router_module.strip():
            raise ConfigError(
                f"{where(join(prefix, 'router_module'))}: must be a module path pattern, e.g. model.layers.*.mlp.gate"
            )
        if self.weights is None and self.policy == "static" and self.weights_file is None:
            raise ConfigError(
                f"{where(join(prefix, 'policy'))}: policy static needs mixing.weights or mixing.weights_file"
            )
        if self.policy == "refloss" and self.reference is None:
            raise ConfigError(
                f"{where(join(prefix, 'policy'))}: policy refloss needs mixing.reference (a JSON file or a run folder)"
            )
        if self.weights is not None:
            values = list(self.weights.values())
            if any(not v >= 0 for v in values):
                raise ConfigError(f"{where(join(prefix, 'weights'))}: weights must be non-negative")
            if abs(sum(values) - 1.0) > 1e-6:
                raise ConfigError(
                    f"{where(join(prefix, 'weights'))}: weights must sum to 1, they sum to {sum(values):.6g}"
                )

    def check_datasets(self, names: list[str], where: Where, prefix: str) -> None:
        """Rules that need the dataset names: weights for exactly these datasets, bounds that admit weights."""
        if self.weights is not None:
            unknown = set(self.weights) - set(names)
            if unknown:
                raise ConfigError(f"{where(join(prefix, 'weights'))}: names no dataset: {', '.join(sorted(unknown))}")
            missing = set(names) - set(self.weights)
            if missing:
                raise ConfigError(
                    f"{where(join(prefix, 'weights'))}: no weight for dataset(s): {', '.join(sorted(missing))}"
                )
        n = len(names)
        if self.floor > self.ceiling or n * self.floor > 1.0 or n * self.ceiling < 1.0:
            raise ConfigError(
                f"{where(join(prefix, 'floor'))}: floor {self.floor} and ceiling {self.ceiling} admit no weights "
                f"of {n} datasets (need 0 <= floor <= ceiling <= 1, n * floor <= 1 <= n * ceiling)"
            )
