"""Every command printed in README.md and docs/*.md runs as printed, or is listed with the reason it is not run.

The commands are read from the docs themselves: each line of a ```bash (sh, shell, console) block, continuation
lines joined and comments dropped, and each inline `moemix ...` span. A new doc (docs/*.md) is read too. Each
command is one of:

- **cheap** (:data:`CHEAP`): runs in seconds on a small finished run or needs no training. It runs exactly as
  printed (its words, through :func:`moemix.cli.main`, which the ``moemix`` script calls) in a copy of the
  repository's configs where ``runs/demo`` is a small finished run of ``configs/demo_tiny.yaml`` and every
  file the docs show is written; a command that needs ``../shared/data`` skips, saying so, where it is absent.
- **not run** (:data:`NOT_RUN`): trains for minutes, needs a GPU, a launcher, another environment, the network,
  or is a template or a mention rather than a command; the reason is written beside it. Its words are still
  checked: a ``moemix`` command's flags and overrides parse, and the repository files it names exist.

A command in the docs that is in neither list fails, and so does an entry of either list no doc prints any more.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shlex
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from moemix.cli import _check_extras, build_parser, main
from moemix.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHARED_DATA = ROOT.parent / "shared" / "data"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_SHELL = {"bash", "sh", "shell", "console"}
_INLINE = re.compile(r"`((?:\.venv/bin/)?moemix [^`]+)`")
_MOEMIX = ("moemix", ".venv/bin/moemix")


def _words(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def _printed(line: str) -> str:
    """A command as printed, without its comment, whitespace collapsed: the key of the lists below."""
    words = _words(line)
    for match in re.finditer(r"\s#", line):
        if shlex.split(line[: match.start()]) == words:
            line = line[: match.start()]
            break
    return " ".join(line.split())


def doc_commands() -> dict[str, list[str]]:
    """Every command the docs print (as :func:`_printed` gives it), with the places that print it."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in _FENCE.finditer(text):
            if block.group(1) not in _SHELL:
                continue
            first = text[: block.start(2)].count("\n") + 1
            body = re.sub(r"\\\n", " ", block.group(2))  # continuation lines are one command
            for offset, line in enumerate(body.splitlines()):
                if _words(line):
                    found.setdefault(_printed(line), []).append(f"{doc.relative_to(ROOT)}:{first + offset}")
        prose = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for span in _INLINE.finditer(prose):
            line = prose[: span.start()].count("\n") + 1
            found.setdefault(_printed(span.group(1)), []).append(f"{doc.relative_to(ROOT)}:{line}")
    return found


@dataclasses.dataclass(frozen=True)
class Cheap:
    """How a cheap command is checked once it ran: files it writes (relative to the repository copy) and text
    it prints; paths it needs that may be absent (then it skips); ``slow`` for the test marker."""

    produces: tuple[str, ...] = ()
    prints: str = ""
    needs: tuple[str, ...] = ()
    slow: bool = False


CHEAP: dict[str, Cheap] = {
    "moemix train --help": Cheap(prints="training options (Hugging Face TrainingArguments"),
    "moemix --help": Cheap(prints="usage: moemix"),
    "moemix report runs/demo": Cheap(produces=("runs/demo/report.html",)),
    "moemix replay runs/demo --eta 5 --c 0.1": Cheap(prints="replayed dynamic (logged)"),
    "moemix replay runs/demo --noise-aware true": Cheap(prints="replayed dynamic (logged)"),
    "moemix replay runs/demo --noise-aware true --noise-z 2": Cheap(prints="replayed dynamic (logged)"),
    "moemix export-weights runs/demo --format llamafactory --average": Cheap(
        produces=("runs/demo/weights.llamafactory.yaml",), prints="interleave_probs"
    ),
    "moemix export-weights runs/demo --format llamafactory --names dialogue=my_sharegpt,code=my_code_alpaca": Cheap(
        produces=("runs/demo/weights.llamafactory.yaml",), prints="my_sharegpt"
    ),
    "moemix export-weights runs/demo --format megatron-args --names prefixes.yaml --out blend.txt": Cheap(
        produces=("blend.txt",), prints="_text_document"
    ),
    "moemix export-weights runs/demo --format hf --schedule": Cheap(
        produces=("runs/demo/weights.hf.schedule.json",), prints="stages"
    ),
    "moemix inspect configs/demo_tiny.yaml --model runs/demo/model": Cheap(
        produces=("runs/inspect/loads.png", "runs/inspect/distances.png", "runs/inspect/loads.json")
    ),
    ".venv/bin/moemix data validate configs/real_mix.yaml": Cheap(
        prints="OK:",
        needs=("../shared/data/sharegpt", "../shared/data/orca", "../shared/data/math", "../shared/data/code"),
        slow=True,
    ),
}
"""Commands run as printed, and what shows that they did their job."""

_TRAINS = "trains for minutes (the CLI's training is covered by the integration tests on tiny runs)"
_BENCH = "a benchmark: it runs long enough to measure (docs/BENCHMARKS.md has its figures)"
_MENTION = "names a subcommand in prose, not a command to run"
_TEMPLATE = "a template: RUN/CONFIG stand for the reader's own run folder or config"
_DISTRIBUTED = (
    "launches several processes (GPUs, or DeepSpeed's CPU build): tests/integration/"
    "test_distributed_training.py runs the CPU launches"
)
_MY_MIX = "configs/my_mix.yaml is the reader's own config; the flags are checked, the run needs their data"
_EVAL_DEMO = "generates 150 answers with the `make demo` model: minutes"
_LLAMAFACTORY_SFT = "needs the LLaMA-Factory environment and the reader's SFT YAML (tests/llamafactory runs it)"

NOT_RUN: dict[str, str] = {
    "make demo": "installs into .venv, then fine-tunes SmolLM2 upcycled to an MoE: minutes on a CPU",
    "make test": "the test suite itself",
    "make test-all": "the test suite itself, both tiers",
    "moemix replay": _MENTION,
    "moemix train configs/demo_tiny.yaml --mixing.noise_aware=true": _TRAINS,
    "moemix train configs/demo_tiny.yaml --mixing.noise_aware=true --mixing.noise_z=2": _TRAINS,
    "moemix compare configs/demo_tiny.yaml --strategies dynamic,dynamic/noise_aware=true --seeds 1,2,3 "
    "--out runs/cmp": "6 training runs of configs/demo_tiny.yaml: minutes",
    "make llamafactory-env": "builds a second environment with LLaMA-Factory's pins from PyPI",
    "make llamafactory-test": "needs the LLaMA-Factory environment (make llamafactory-env)",
    "rm -rf /tmp/democache runs/demo && "
    "MOEMIX_CACHE=/tmp/democache /usr/bin/time -v make demo": "times a cold `make demo` (minutes)",
    'pip install "lm_eval[hf]"': "installs lm-evaluation-harness from PyPI",
    ".venv/bin/moemix upcycle --model builtin:smollm2 --experts 8 --top-k 2 --mode copy "
    "--out models/smollm2-moe": "writes an 8-expert SmolLM2 MoE (about 1 GB) after a ~40 s GGUF load; "
    "tests/integration/test_default_model_upcycle.py upcycles it smaller",
    ".venv/bin/moemix upcycle --model /models/llama --experts 16 --top-k 4 --layers last:8 --mode split "
    "--out models/llama-moe": "needs the reader's own dense Llama folder at /models/llama",
    ".venv/bin/moemix eval runs/demo --config configs/demo.yaml --tasks devloss,gsm8k,humaneval,mbpp --limit 50 "
    "--gsm8k-file ../shared/data/math/gsm8k_test.jsonl --mbpp-file ../shared/data/code/mbpp.jsonl": _EVAL_DEMO,
    "moemix eval runs/demo --config configs/demo.yaml --tasks devloss,gsm8k,humaneval,mbpp --limit 50 "
    "--gsm8k-file ../shared/data/math/gsm8k_test.jsonl --mbpp-file ../shared/data/code/mbpp.jsonl": _EVAL_DEMO,
    ".venv/bin/moemix train configs/demo.yaml --training.max_steps 400 --mixing.eta 5": _TRAINS,
    "moemix compare configs/demo_tiny.yaml --strategies uniform,datasize,random,dynamic,dynamic/source=online "
    "--seeds 1,2,3 --out runs/cmp": "15 training runs of configs/demo_tiny.yaml: tens of minutes",
    "moemix demo --tiny": "trains 200 steps (about 2 minutes); tests/integration/test_cli.py runs it for 6",
    "moemix demo": "fine-tunes SmolLM2 upcycled to an MoE: minutes on a CPU",
    "OMP_WAIT_POLICY=PASSIVE .venv/bin/moemix demo --out runs/demo": "fine-tunes SmolLM2 upcycled to an MoE: minutes",
    "moemix train": _MENTION,
    "moemix compare": _MENTION,
    "moemix eval": _MENTION,
    "moemix train --verbose": "names a flag in prose (with `demo --verbose`); it needs a config to run",
    "moemix export-weights --format llamafactory": "names a flag in prose; it needs a run folder to run",
    "moemix eval RUN --tasks devloss": _TEMPLATE,
    "moemix eval RUN": _TEMPLATE,
    "moemix data validate CONFIG": _TEMPLATE,
    "moemix export-weights RUN": _TEMPLATE,
    "moemix train configs/my_mix.yaml --resume_from_checkpoint true": _MY_MIX,
    "moemix train configs/my_mix.yaml --resume_from_checkpoint runs/x/checkpoint-2000": _MY_MIX,
    "torchrun --nproc_per_node 8 -m moemix.cli train configs/my_mix.yaml": _DISTRIBUTED,
    "accelerate launch --config_file configs/accelerate/ddp_2gpu.yaml -m moemix.cli train "
    "configs/my_mix.yaml": _DISTRIBUTED,
    "torchrun --nproc_per_node 8 -m moemix.cli train configs/my_mix.yaml "
    "--deepspeed configs/deepspeed/zero3.json": _DISTRIBUTED,
    'torchrun --nproc_per_node 8 -m moemix.cli train configs/my_mix.yaml --training.fsdp "full_shard auto_wrap" '
    '--training.fsdp_config \'{"transformer_layer_cls_to_wrap": ["MixtralDecoderLayer"]}\'': "FSDP needs GPUs "
    "(moemix refuses it on a CPU, see docs/DISTRIBUTED.md)",
    "python -m moemix.integrations.llamafactory train my_sft.yaml [key=value ...]": _LLAMAFACTORY_SFT,
    "torchrun --nproc_per_node 2 -m moemix.integrations.llamafactory train my_sft.yaml": _LLAMAFACTORY_SFT,
    "lm_eval --model hf --model_args pretrained=runs/demo/model,dtype=bfloat16 --tasks mmlu --num_fewshot 5 "
    "--batch_size 8 --output_path runs/demo/lm_eval": "needs lm-evaluation-harness and the network (MMLU)",
    "lm_eval --model hf --model_args pretrained=runs/demo/model,dtype=bfloat16 --tasks bbh_cot_fewshot "
    "--batch_size 8 --output_path runs/demo/lm_eval": "needs lm-evaluation-harness and the network (BBH)",
    "lm_eval --model hf --model_args pretrained=BASE_MODEL_FOLDER,peft=runs/my-lora/model,dtype=bfloat16 "
    "--tasks mmlu --num_fewshot 5 --batch_size 8": "a template (BASE_MODEL_FOLDER), and needs lm-evaluation-harness",
    "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/redundancy.py --out runs/quality/redundancy": _BENCH,
    "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/real_mix.py --out runs/quality/real_mix": _BENCH,
    "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/redundancy.py --out runs/quality/ablations "
    "--strategies ablations --seeds 1,2 --steps 100 --interval 10 --probe-batches 2": _BENCH,
    "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/update_scaling.py": _BENCH,
    "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sampler_throughput.py": _BENCH,
    "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/first_step.py": _BENCH,
    "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/routing_overhead.py": _BENCH,
}
"""Commands the docs print that this test does not run, each with the reason."""

NOT_RUN_BY_PATTERN: dict[str, str] = {
    r"\bbenchmarks/\S+\.py\b": _BENCH,
    r"\bexamples/\S+\.py --tiny\b": "an example script: tests/integration/test_examples.py runs each with --tiny",
}
"""Whole families of commands not run here, by a pattern of the command, with the reason."""


def not_run_reason(command: str) -> str | None:
    """Why a command the docs print is not run here (listed, or matched by a pattern), or None."""
    if command in NOT_RUN:
        return NOT_RUN[command]
    return next((why for pattern, why in NOT_RUN_BY_PATTERN.items() if re.search(pattern, command)), None)


READERS_OWN = {"configs/my_mix.yaml", "my_sft.yaml", "prefixes.yaml"}
"""Files the docs' commands name that are the reader's (prefixes.yaml: its contents are shown in docs/EXPORT.md)."""

COMMANDS = doc_commands()


# ---------------------------------------------------------------------------------------------- the lists


def test_every_command_in_the_docs_is_run_or_listed_with_a_reason():
    unlisted = [
        f"{cmd}  ({', '.join(places)})"
        for cmd, places in COMMANDS.items()
        if cmd not in CHEAP and not not_run_reason(cmd)
    ]
    assert not unlisted, (
        "commands in the docs that this test neither runs nor lists; add each to CHEAP (it runs in seconds) or "
        "NOT_RUN (with the reason) in tests/integration/test_docs_commands.py:\n" + "\n".join(unlisted)
    )


def test_every_listed_command_is_still_in_the_docs():
    stale = sorted((set(CHEAP) | set(NOT_RUN)) - set(COMMANDS))
    assert not stale, f"listed but no doc prints them any more: {stale}"
    assert not set(CHEAP) & set(NOT_RUN)


def _moemix_argv(words: list[str]) -> list[str] | None:
    """The ``moemix`` arguments of a command (directly, or through ``-m moemix.cli`` under a launcher)."""
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]  # environment assignments
    if words and words[0] in _MOEMIX:
        return words[1:]
    if "-m" in words and words[words.index("-m") + 1 : words.index("-m") + 2] == ["moemix.cli"]:
        return words[words.index("-m") + 2 :]
    return None


@pytest.mark.parametrize(
    "command",
    sorted(set(NOT_RUN) | {c for c in COMMANDS if c not in CHEAP and not_run_reason(c)}),
    ids=lambda c: c[:120],
)
def test_commands_not_run_still_parse_and_name_files_that_exist(command, capsys):
    """What can be checked without running: moemix's flags and overrides, the config they load, the repo files."""
    if command not in COMMANDS:
        pytest.skip("no doc prints it (test_every_listed_command_is_still_in_the_docs says so)")
    words = _words(command)
    for word in words:
        value = word.split("=", 1)[-1]
        if re.match(r"(configs|benchmarks|examples)/", value) and value not in READERS_OWN:
            assert (ROOT / value).exists(), f"{command}: names {value}, which the repository does not have"
    argv = _moemix_argv(words)
    if argv is None or not_run_reason(command) in (_MENTION, _TEMPLATE) or "RUN" in argv or "CONFIG" in argv:
        return
    if argv[-1:] == ["--verbose"] or argv == ["export-weights", "--format", "llamafactory"]:
        return  # a flag named in prose
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    _check_extras(parser, args, extras)  # unknown flags and override keys: the errors `moemix` would print
    config = getattr(args, "config", None)
    if config and (ROOT / config).is_file() and args.command in ("train", "compare", "inspect"):
        load_config(ROOT / config, extras)  # the overrides' values too


# ------------------------------------------------------------------------------------------ cheap commands


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the repository's configs with ``runs/demo`` a small finished run, as the docs' commands expect.

    The run is ``configs/demo_tiny.yaml`` (its datasets, tokenizer and policy) with a smaller model and 4 steps,
    so that ``runs/demo`` holds what a demo run writes in seconds rather than minutes.
    """
    root = tmp_path_factory.mktemp("docs") / "repo"
    shutil.copytree(ROOT / "configs", root / "configs")
    if (ROOT.parent / "shared").is_dir():
        (root.parent / "shared").symlink_to(ROOT.parent / "shared")
    for doc in DOCS:  # files the docs show in full, e.g. docs/EXPORT.md's prefixes.yaml
        for block in _FENCE.finditer(doc.read_text(encoding="utf-8")):
            named = re.match(r"# (\S+\.(?:yaml|json)):", block.group(2))
            if named:
                (root / named.group(1)).write_text(block.group(2), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MOEMIX_CACHE", str(tmp_path_factory.mktemp("cache")))
        small = [
            "--model.tiny_config.hidden_size=32",
            "--model.tiny_config.intermediate_size=64",
            "--model.tiny_config.num_hidden_layers=2",
            "--model.tiny_config.num_local_experts=4",
            "--max_length=96",
            "--max_steps=4",
            "--mixing.interval=2",
            "--mixing.probe_batches=1",
            "--eval_batches=1",
            "--per_device_train_batch_size=2",
            "--per_device_eval_batch_size=2",
            "--disable_tqdm=true",
        ]
        with redirect_stdout(io.StringIO()):
            assert main(["train", "configs/demo_tiny.yaml", "--output_dir=runs/demo", *small]) == 0
    return root


CHEAP_PARAMS = [
    pytest.param(command, check, marks=[pytest.mark.slow] if check.slow else [], id=command)
    for command, check in sorted(CHEAP.items())
]


@pytest.mark.parametrize(("command", "check"), CHEAP_PARAMS)
def test_cheap_commands_run_as_printed(command, check, repo, monkeypatch):
    if command not in COMMANDS:
        pytest.skip("no doc prints it (test_every_listed_command_is_still_in_the_docs says so)")
    missing = [path for path in check.needs if not (repo / path).exists()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (the shared data beside the repository), absent here")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MOEMIX_CACHE", str(repo.parent / "cache"))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(_moemix_argv(_words(command)))
        except SystemExit as stop:  # --help exits, as argparse does
            code = stop.code or 0
    assert code == 0, f"{command} exited {code}: {err.getvalue()[-2000:]}"
    assert "Traceback" not in err.getvalue()
    for path in check.produces:
        assert (repo / path).is_file(), f"{command} did not write {path}"
    assert check.prints in out.getvalue(), out.getvalue()[-2000:]
