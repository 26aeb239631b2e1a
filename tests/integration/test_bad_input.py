"""The bad-input matrix: every way a user's input can be wrong that we know of, through the real command line.

Each case is one command with one thing wrong in otherwise good input (a config, data files, a run folder, a
checkpoint, a model). It must end with exit status 2 and one line on stderr, ``moemix: error: ...``, that names
the file and line, the field or the flag, and the rule broken; no traceback; and nothing half-written: every
file under the case's folder (the output folder, the run folder, the data, the working directory) is as it was,
no folder or temporary file left behind.

Cases run in-process through :func:`moemix.cli.main` (the library is imported once, so the matrix stays fast);
those marked ``subprocess=True`` also run as ``python -m moemix.cli`` in a fresh process, started in the background
when the module begins, to prove the same line with no traceback from end to end. A control test runs the
good input the cases start from, so that each case fails for its one change.

Placeholders in a case's argv and expected text: ``{tmp}`` the case's folder (also the working directory),
``{cfg}`` the good config, ``{data}`` the data folder, ``{run}`` a finished run folder (as
``moemix export-weights`` reads it; its kind per case).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from moemix.cli import main
from moemix.extras import installed
from moemix.train.checkpoint import STATE_FILE
from moemix.train.folder import HOLDER_FILE, LOCK_FILE

SRC = Path(__file__).resolve().parents[2] / "src"

# ------------------------------------------------------------------------------------------- the good input

GOOD_CONFIG = """\
output_dir: {tmp}/out
max_length: 128
datasets:
  - {{name: a, path: "{data}/a.jsonl", dev_size: 20}}
  - {{name: b, path: "{data}/b.jsonl", dev_size: 20}}
  - {{name: c, path: "{data}/c.jsonl", dev_size: 20}}
model: {{tiny: mixtral, tokenizer: builtin, vocab_size: 300}}
mixing: {{interval: 2, probe_batches: 1}}
training: {{max_steps: 2, per_device_train_batch_size: 2, disable_tqdm: true}}
"""
"""Three small datasets in two formats, a tiny Mixtral: the start of every case (line numbers matter)."""

ROWS = 60


def _alpaca(i: int) -> dict:
    return {"instruction": f"Add {i} and {i + 1}.", "output": f"{2 * i + 1}"}


def _openai(i: int) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"Name the colour number {i}."},
            {"role": "assistant", "content": ["red", "green", "blue"][i % 3]},
        ]
    }


def _sharegpt(i: int) -> dict:
    return {
        "conversations": [
            {"from": "human", "value": f"Reverse the word w{i}x."},
            {"from": "gpt", "value": f"x{str(i)[::-1]}w"},
        ]
    }


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# A finished run folder as export-weights, replay and report read it (moemix writes these files; see
# tests/unit/report/conftest.py for whole ones), by kind: each kind breaks one thing.
RUN_KINDS: dict[str, dict[str, str] | None] = {
    "finished": {
        "mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n',
        "metrics.json": '{"global_step": 4}',
    },
    "no_log": {"metrics.json": '{"global_step": 4}'},
    "no_metrics": {"mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n'},
    "bad_line": {
        "mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n{"step": 8, "wei\n',
        "metrics.json": '{"global_step": 8}',
    },
    "negative": {
        "mixture.jsonl": '{"step": 4, "weights": {"chat": -0.25, "code": 1.25}}\n',
        "metrics.json": '{"global_step": 4}',
    },
    "renamed": {
        "mixture.jsonl": '{"step": 4, "weights": {"chat": 0.5, "code": 0.5}}\n'
        '{"step": 8, "weights": {"chat": 0.5, "math": 0.5}}\n',
        "metrics.json": '{"global_step": 8}',
    },
    "bad_metrics": {
        "mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n',
        "metrics.json": '{"global_step": ',
    },
    "not_a_log": {"mixture.jsonl": '{"loss": 1.5}\n', "metrics.json": '{"global_step": 4}'},
    "missing": None,
}


@dataclasses.dataclass
class World:
    """The files of one case: good input, then what the case's setup breaks."""

    tmp: Path
    data: Path
    cfg: Path
    run: Path
    cleanup: list[Callable[[], None]] = dataclasses.field(default_factory=list)
    """Undone after the case, whatever happened (a process holding a lock)."""
    pid: int | None = None
    """The process a setup started, for the expected text (``{pid}``)."""

    @property
    def fill(self) -> dict[str, str]:
        fill = {"tmp": str(self.tmp), "data": str(self.data), "cfg": str(self.cfg), "run": str(self.run)}
        return fill | ({"pid": str(self.pid)} if self.pid is not None else {})

    def config(self, text: str, name: str = "bad.yaml") -> Path:
        """Write a config beside the good one."""
        path = self.tmp / name
        path.write_text(text)
        return path

    def good_with(self, old: str, new: str, name: str = "bad.yaml") -> Path:
        """The good config with one piece of text replaced."""
        text = self.cfg.read_text()
        assert old in text, old
        path = self.tmp / name
        path.write_text(text.replace(old, new))
        return path


def make_world(tmp: Path, run_kind: str = "finished") -> World:
    data = tmp / "data"
    data.mkdir()
    (data / "a.jsonl").write_text(_jsonl([_alpaca(i) for i in range(ROWS)]))
    (data / "b.jsonl").write_text(_jsonl([_openai(i) for i in range(ROWS)]))
    (data / "c.jsonl").write_text(_jsonl([_sharegpt(i) for i in range(ROWS)]))
    cfg = tmp / "good.yaml"
    cfg.write_text(GOOD_CONFIG.format(tmp=tmp, data=data))
    run = tmp / "run"
    for name, text in (RUN_KINDS[run_kind] or {}).items():
        run.mkdir(exist_ok=True)
        (run / name).write_text(text)
    return World(tmp, data, cfg, run)


# ------------------------------------------------------------------------------------------------ setups
# Each breaks one thing in a world; argv and expected text of the case say where.


def _lines_with_bad_byte(w: World, name: str, line: int, rows: int = 100, opener=open) -> None:
    lines = [json.dumps(_alpaca(i)).encode() for i in range(rows)]
    lines[line - 1] = lines[line - 1].replace(b"Add", b"Add \xff")
    with opener(w.data / name, "wb") as fh:
        fh.write(b"\n".join(lines) + b"\n")


def bad_byte_line_78(w: World) -> None:
    _lines_with_bad_byte(w, "bad78.jsonl", 78)


def bad_byte_line_78_gz(w: World) -> None:
    _lines_with_bad_byte(w, "bad78.jsonl.gz", 78, opener=gzip.open)


def bad_byte_csv(w: World) -> None:
    rows = b"".join(b"Add %d and 1.,%d\n" % (i, i + 1) for i in range(50))
    (w.data / "bad.csv").write_bytes(b"instruction,output\n" + rows[:200] + b"caf\xe9,1\n" + rows[200:])


def malformed_line_3(w: World) -> None:
    lines = _jsonl([_alpaca(i) for i in range(ROWS)]).splitlines(keepends=True)
    lines[2] = '{"instruction": "Add 2 and 3."\n'
    (w.data / "broken.jsonl").write_text("".join(lines))


def missing_output_line_5(w: World) -> None:
    rows = [_alpaca(i) for i in range(ROWS)]
    del rows[4]["output"]
    (w.data / "nooutput.jsonl").write_text(_jsonl(rows))


def roles_out_of_order(w: World) -> None:
    rows = [_sharegpt(i) for i in range(ROWS)]
    rows[9]["conversations"].reverse()
    (w.data / "order.jsonl").write_text(_jsonl(rows))


def huge_line(w: World) -> None:
    """One valid JSON line of 50 MB among short ones: it once kept validation busy for over 15 minutes."""
    rows = [_alpaca(i) for i in range(ROWS)]
    rows[5] = {"instruction": "Summarise: " + "lorem ipsum dolor sit amet " * (50_000_000 // 27), "output": "ok"}
    (w.data / "huge.jsonl").write_text(_jsonl(rows))


def empty_file(w: World) -> None:
    (w.data / "empty.jsonl").write_text("")


def text_file(w: World) -> None:
    (w.data / "notes.txt").write_text("Add 1 and 2.\n")


def all_invalid(w: World) -> None:
    (w.data / "invalid.jsonl").write_text(_jsonl([{"question": f"q{i}"} for i in range(ROWS)]))


def a_file(w: World) -> None:
    (w.tmp / "afile").write_text("not a folder\n")


def lock_held(w: World) -> None:
    """Another process holds the output folder's lock, as a running ``moemix train`` does (filelock, holder file)."""
    out = w.tmp / "out"
    out.mkdir()
    code = (
        "import json, os, sys, time, filelock\n"
        f"lock = filelock.FileLock({str(out / LOCK_FILE)!r}); lock.acquire()\n"
        f"open({str(out / HOLDER_FILE)!r}, 'w').write(json.dumps({{'pid': os.getpid(), 'host': 'testhost', "
        "'started': '2024-01-01 00:00:00'}))\n"
        "print('locked', flush=True); time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    w.cleanup.append(lambda: (holder.kill(), holder.wait()))
    assert holder.stdout.readline().strip() == "locked"
    w.pid = holder.pid


def finished_run_in_out(w: World) -> None:
    """The output folder holds a finished run: a failed rerun must leave every file of it as it was."""
    out = w.tmp / "out"
    out.mkdir()
    (out / "mixture.jsonl").write_text('{"step": 2, "weights": {"a": 0.3, "b": 0.3, "c": 0.4}}\n')
    (out / "metrics.json").write_text('{"global_step": 2}\n')
    (out / "model").mkdir()
    (out / "model" / "config.json").write_text("{}\n")


def _checkpoint(w: World, state: str | None) -> Path:
    folder = w.tmp / "out" / "checkpoint-2"
    folder.mkdir(parents=True)
    if state is not None:
        (folder / STATE_FILE).write_text(state)
    return folder


def checkpoint_without_state(w: World) -> None:
    _checkpoint(w, None)


def checkpoint_damaged_state(w: World) -> None:
    _checkpoint(w, '{"version": 1, "step": 2, "fingerp')


def checkpoint_other_mixture(w: World) -> None:
    """A complete checkpoint of a run whose mixing.eta was 3 (the fingerprint moemix saves with every checkpoint)."""
    from moemix.config import load_config
    from moemix.train.checkpoint import fingerprint

    saved = fingerprint(load_config(w.cfg, ["--mixing.eta=3"]))
    state = {"version": 1, "step": 2, "fingerprint": saved, "names": ["a", "b", "c"], "sampler": {}, "history": []}
    _checkpoint(w, json.dumps(state))


def names_files(w: World) -> None:
    (w.tmp / "list.yaml").write_text("- chat\n- code\n")
    (w.tmp / "broken.yaml").write_text("chat: a\ncode: [b")
    (w.tmp / "comma.yaml").write_text(json.dumps({"chat": "a,b"}))
    (w.tmp / "number.yaml").write_text("chat: 2024\n")


def eval_target(w: World) -> None:
    (w.tmp / "target").mkdir()
    (w.tmp / "he.jsonl").write_text("")


def config_bytes(w: World) -> None:
    text = w.cfg.read_bytes().replace(b"max_length: 128", b"max_length: 128  # caf\xe9")
    (w.tmp / "bad.yaml").write_bytes(text)


def config_edit(old: str, new: str) -> Callable[[World], None]:
    """A setup writing ``{tmp}/bad.yaml``: the good config with ``old`` replaced by ``new``."""

    def setup(w: World) -> None:
        w.good_with(old, new)

    setup.__name__ = f"config_edit({old!r} -> {new!r})"
    return setup


def config_text(text: str) -> Callable[[World], None]:
    def setup(w: World) -> None:
        w.config(text)

    return setup


# --------------------------------------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: the command, a substring of the one line it must print, and how the input is broken."""

    group: str
    argv: tuple[str, ...]
    expected: str
    setup: Callable[[World], None] | None = None
    run_kind: str = "finished"
    needs_absent: str | None = None
    """A module that must not be installed for this case (an optional dependency's check)."""
    subprocess: bool = False
    """Run it from a fresh ``python -m moemix.cli`` too."""

    @property
    def id(self) -> str:
        broken = f" [{self.setup.__name__}]" if self.setup is not None else ""
        kind = f" [run: {self.run_kind}]" if self.run_kind != "finished" else ""
        return f"{self.group}: {' '.join(self.argv)}{broken}{kind}"[:160]


def C(group, argv, expected, setup=None, **kw) -> Case:
    return Case(group, tuple(argv), expected, setup, **kw)


TRAIN = ["train", "{cfg}"]
BAD = ["train", "{tmp}/bad.yaml"]
HE = ["--tasks", "humaneval", "--humaneval-file", "{tmp}/he.jsonl"]

CASES = [
    # ---- config file
    C("config", ["train", "{tmp}/nope.yaml"], "{tmp}/nope.yaml: config file not found"),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:2: not UTF-8 text (byte 0xe9); save the file as UTF-8",
        config_bytes,
        subprocess=True,
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:8: not valid YAML",
        config_edit("mixing: {interval: 2, probe_batches: 1}", "mixing: {interval: 2, probe_batches: 1}}"),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:8: mixing.etta: unknown key; did you mean 'eta'?",
        config_edit("probe_batches: 1}", "probe_batches: 1, etta: 3}"),
    ),
    C("config", BAD, "{tmp}/bad.yaml: the top level must be a mapping of config fields", config_text("- a\n- b\n")),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:3: max_length: key given twice",
        config_edit("datasets:", "max_length: 64\ndatasets:"),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:9: training.learning_rate: expected float, got str 'abc'",
        config_edit("max_steps: 2,", "max_steps: 2, learning_rate: abc,"),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:9: training.per_device_train_batch_size: must be >= 1, got 0",
        config_edit("per_device_train_batch_size: 2", "per_device_train_batch_size: 0"),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:9: training.save_strategy: must be one of no, steps, epoch, best, got 'nope'",
        config_edit("max_steps: 2,", "max_steps: 2, save_strategy: nope,"),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:7: model: give exactly one of model.name_or_path and model.tiny",
        config_edit("tiny: mixtral,", "tiny: mixtral, name_or_path: x,"),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:5: datasets.1.name: duplicate dataset name 'a'",
        config_edit("{name: b,", "{name: a,"),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:4: datasets.0.dev_size: a fraction must be in (0, 1), got 1.5",
        config_edit('a.jsonl", dev_size: 20', 'a.jsonl", dev_size: 1.5'),
    ),
    C(
        "config",
        BAD,
        "{tmp}/bad.yaml:9: training.report_to: tensorboard needs the tensorboard package, which is not "
        "installed: pip install 'moemix[tensorboard]'",
        config_edit("max_steps: 2,", "max_steps: 2, report_to: tensorboard,"),
        needs_absent="tensorboard",
    ),
    # ---- command-line overrides and flags
    C(
        "overrides",
        [*TRAIN, "--training.learning_rate=abc"],
        "command-line override --training.learning_rate: expected float, got str 'abc'",
    ),
    C(
        "overrides",
        [*TRAIN, "--training.per_device_train_batch_size", "0"],
        "command-line override --training.per_device_train_batch_size: must be >= 1, got 0",
    ),
    C(
        "overrides",
        [*TRAIN, "--training.save_strategy", "nope"],
        "command-line override --training.save_strategy: must be one of no, steps, epoch, best, got 'nope'",
    ),
    C(
        "overrides",
        [*TRAIN, "--mixing.eta.x", "3"],
        "command-line override --mixing.eta.x: mixing.eta is a float setting, not a section; "
        "set it with --mixing.eta VALUE",
        subprocess=True,
    ),
    C(
        "overrides",
        [*TRAIN, "--output_dir"],
        "command-line override --output_dir: needs a value (str); only a true/false setting may be given without one",
    ),
    C("overrides", [*TRAIN, "--mixing.policy", "dynamik"], "--mixing.policy: must be one of uniform, static,"),
    C("overrides", [*TRAIN, "--mixing.policy=dynamc"], "got 'dynamc'; did you mean 'dynamic'?"),
    C(
        "overrides",
        [*TRAIN, "--trainig.max_steps", "3"],
        "unknown flag --trainig.max_steps; did you mean --training.max_steps?",
    ),
    C("overrides", [*TRAIN, "--max_stesp", "3"], "unknown flag --max_stesp; did you mean --max_steps?"),
    C("overrides", [*TRAIN, "--verbsoe"], "unknown flag --verbsoe; did you mean --verbose?"),
    C(
        "overrides",
        [*TRAIN, "--mixing.etta", "3"],
        "command-line override --mixing.etta: unknown key; did you mean --mixing.eta?",
    ),
    C(
        "overrides",
        [*TRAIN, "--datasets.5.path", "x.jsonl"],
        "command-line override --datasets.5.path: no list item 5 under datasets",
    ),
    C("overrides", [*TRAIN, "--mixing.eta=nan"], "command-line override --mixing.eta: must be >= 0, got nan"),
    C("overrides", [*TRAIN, "--training.max_steps", "1.5"], "command-line override --training.max_steps: expected int"),
    C(
        "overrides",
        [*TRAIN, "--mixing.weights={{a: 1.5, b: -0.5, c: 0}}"],
        "--mixing.weights: weights must be non-negative",
    ),
    C("overrides", [*TRAIN, "--datasets.0.format", "alpacca"], "--datasets.0.format: must be one of auto, sharegpt,"),
    C(
        "overrides",
        [*TRAIN, "--training.report_to", "tensorboard"],
        "command-line override --training.report_to: tensorboard needs the tensorboard package, "
        "which is not installed: pip install 'moemix[tensorboard]'",
        needs_absent="tensorboard",
    ),
    C("overrides", [*TRAIN, "--training.report_to", "wandb"], "pip install 'moemix[wandb]'", needs_absent="wandb"),
    C("overrides", [*TRAIN, "oops"], "argument 'oops': expected --key value, --key=value or key=value"),
    C("overrides", ["trian", "{cfg}"], "argument command: invalid choice: 'trian'; did you mean train?"),
    C("overrides", ["data", "valdate", "{cfg}"], "invalid choice: 'valdate'; did you mean validate?"),
    C("overrides", ["train"], "moemix train: the following arguments are required: config"),
    # ---- data files
    C("data", [*TRAIN, "--datasets.0.path={data}/gone.jsonl"], "{data}/gone.jsonl: data file not found"),
    C(
        "data",
        BAD,
        "{data}/a.jsonl:1: field 'quest': missing (alpaca format) (and 59 more invalid record(s) in dataset 'a')",
        config_edit('a.jsonl", dev_size: 20', 'a.jsonl", dev_size: 20, columns: {instruction: quest}'),
    ),
    C(
        "data",
        ["data", "validate", "{tmp}/bad.yaml"],
        "first: {data}/a.jsonl:1: field 'quest': missing (alpaca format)",
        config_edit('a.jsonl", dev_size: 20', 'a.jsonl", dev_size: 20, columns: {instruction: quest}'),
    ),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/bad78.jsonl"],
        "{data}/bad78.jsonl:78: not UTF-8 text (byte 0xff at column 22); save the file as UTF-8",
        bad_byte_line_78,
    ),
    C(
        "data",
        ["data", "validate", "{cfg}", "--datasets.0.path={data}/bad78.jsonl"],
        "{data}/bad78.jsonl:78: not UTF-8 text",
        bad_byte_line_78,
    ),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/bad78.jsonl.gz"],
        "{data}/bad78.jsonl.gz:78: not UTF-8 text (byte 0xff",
        bad_byte_line_78_gz,
    ),
    C("data", [*TRAIN, "--datasets.0.path={data}/bad.csv"], "{data}/bad.csv:", bad_byte_csv),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/broken.jsonl"],
        "{data}/broken.jsonl:3: not valid JSON",
        malformed_line_3,
    ),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/nooutput.jsonl"],
        "{data}/nooutput.jsonl:5: field 'output': missing",
        missing_output_line_5,
    ),
    C("data", [*TRAIN, "--datasets.2.path={data}/order.jsonl"], "{data}/order.jsonl:10: ", roles_out_of_order),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/huge.jsonl"],
        "{data}/huge.jsonl:6: field 'instruction': 49,999,988 characters (49,999,990 in the record); a record may hold "
        "at most data.max_record_chars=1,000,000",
        huge_line,
    ),
    C(
        "data",
        [*TRAIN, "--datasets.0.path=hf:moemix-bad-input/no-such-dataset"],
        "hf:moemix-bad-input/no-such-dataset: ",
        subprocess=True,
    ),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/empty.jsonl"],
        "{data}/empty.jsonl: empty file (no records)",
        empty_file,
    ),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/notes.txt"],
        "{data}/notes.txt: unsupported file type '.txt'",
        text_file,
    ),
    C("data", [*TRAIN, "--datasets.0.path={data}/*.parquet"], "{data}/*.parquet: no file matches this pattern"),
    C("data", [*TRAIN, "--datasets.0.dev_size=0"], "dataset 'a': no dev split; give dev_path, dev_size"),
    C(
        "data",
        [*TRAIN, "--datasets.0.dev_size=60"],
        "dataset 'a': dev_size 60 holds out 60 of 60 usable examples, leaving none",
    ),
    C(
        "data",
        [*TRAIN, "--datasets.0.path={data}/invalid.jsonl", "--data.skip_invalid=true"],
        "dataset 'a': no usable example in train (60 read, 60 invalid",
        all_invalid,
    ),
    C("data", [*TRAIN, "--max_length=8"], "no usable example in train"),
    # ---- model
    C(
        "model",
        [*TRAIN, "--model.tiny=null", "--model.name_or_path={tmp}/no-model"],
        "command-line override --model.name_or_path: {tmp}/no-model: model folder not found",
    ),
    C(
        "model",
        BAD,
        "{tmp}/bad.yaml:7: model.name_or_path: ./models/nope: model folder not found",
        config_edit("tiny: mixtral,", "name_or_path: ./models/nope,"),
    ),
    C(
        "model",
        [*TRAIN, "--model.tiny=null", "--model.name_or_path=moemix-bad-input/no-such-model"],
        "model.name_or_path: 'moemix-bad-input/no-such-model' ",
    ),
    C(
        "model",
        [*TRAIN, "--model.tokenizer={tmp}/no-tokenizer"],
        "command-line override --model.tokenizer: {tmp}/no-tokenizer: tokenizer folder not found",
    ),
    C("model", [*TRAIN, "--model.tiny=mixtrall"], "model.tiny: unknown architecture 'mixtrall'"),
    C("model", [*TRAIN, "--mixing.layers=99"], "mixing.layers: routing layer 99 is not"),
    C(
        "model",
        [*TRAIN, "--model.tiny=null", "--model.name_or_path=builtin:smollm3"],
        "command-line override --model.name_or_path: unknown built-in model 'builtin:smollm3'",
    ),
    C(
        "model",
        ["upcycle", "--model", "{tmp}/no-model", "--out", "{tmp}/moe"],
        "upcycle --model: {tmp}/no-model: model folder not found",
    ),
    C(
        "model",
        ["upcycle", "--model", "{tmp}/no-model", "--out", "{tmp}/moe", "--top-k", "9"],
        "--top-k: must be in [1, experts=8], got 9",
    ),
    C(
        "model",
        ["upcycle", "--model", "{data}", "--out", "{tmp}/afile"],
        "upcycle out: {tmp}/afile already exists and is not an empty folder; choose another --out",
        a_file,
    ),
    C(
        "model",
        ["inspect", "{cfg}", "--model", "{tmp}/no-model", "--out", "{tmp}/inspected"],
        "command-line override --model.name_or_path: {tmp}/no-model: model folder not found",
    ),
    # ---- output folder
    C("output", [*TRAIN, "--output_dir={tmp}/afile"], "output_dir {tmp}/afile: is a file, not a folder", a_file),
    C(
        "output",
        [*TRAIN, "--output_dir={tmp}/afile/run"],
        "output_dir {tmp}/afile/run: cannot create the folder",
        a_file,
    ),
    C(
        "output",
        TRAIN,
        "output_dir {tmp}/out: another moemix run is writing to it (pid {pid} on host testhost",
        lock_held,
    ),
    C("output", [*TRAIN, "--mixing.layers=99"], "mixing.layers: routing layer 99", finished_run_in_out),
    C("output", [*TRAIN, "--model.tiny=mixtrall"], "model.tiny: unknown architecture", finished_run_in_out),
    C("output", ["demo", "--tiny", "--out", "{tmp}/afile"], "output_dir {tmp}/afile: is a file, not a folder", a_file),
    # ---- resume
    C(
        "resume",
        [*TRAIN, "--training.resume_from_checkpoint=true"],
        "--resume_from_checkpoint true: no complete checkpoint in {tmp}/out",
    ),
    C(
        "resume",
        [*TRAIN, "--training.resume_from_checkpoint={tmp}/out/checkpoint-2"],
        "--resume_from_checkpoint {tmp}/out/checkpoint-2: not a complete moemix checkpoint (no moemix_state.json)",
        checkpoint_without_state,
    ),
    C(
        "resume",
        [*TRAIN, "--training.resume_from_checkpoint=true"],
        "{tmp}/out/checkpoint-2/moemix_state.json: not a moemix state file (not valid JSON",
        checkpoint_damaged_state,
    ),
    C(
        "resume",
        [*TRAIN, "--training.resume_from_checkpoint=true"],
        "{tmp}/out/checkpoint-2: the mixture changed since this checkpoint (mixing.eta: 3.0 -> 10.0); pass "
        "--allow_mixture_change to resume anyway",
        checkpoint_other_mixture,
    ),
    # ---- export-weights (the cases of the first export test, moved here)
    C("export", ["export-weights", "{run}", "--format", "parquet"], "--format: unknown format 'parquet'"),
    C("export", ["export-weights", "{run}", "--format", "megatorn"], "did you mean megatron?"),
    C("export", ["export-weights", "{run}", "--fromat", "megatron"], "unknown flag --fromat; did you mean --format?"),
    C("export", ["export-weights", "{run}", "--averge"], "unknown flag --averge; did you mean --average?"),
    C("export", ["export-weights", "{run}", "--names", "chat"], "--names: 'chat' is neither a file nor name=consumer"),
    C(
        "export",
        ["export-weights", "{run}", "--names", "chta=sharegpt"],
        "--names: 'chta' is not a dataset of the run (chat, code); did you mean chat?",
    ),
    C("export", ["export-weights", "{run}", "--names", "chat="], "--names: 'chat=' is not name=consumer"),
    C("export", ["export-weights", "{run}", "--names", "chat=a,code=a"], "--names: chat and code both map to 'a'"),
    C("export", ["export-weights", "{run}", "--names", "chat=a,chat=b"], "--names: chat is mapped twice"),
    C(
        "export",
        ["export-weights", "{run}", "--names", "{tmp}/list.yaml"],
        "list.yaml: expected a mapping",
        names_files,
    ),
    C(
        "export",
        ["export-weights", "{run}", "--names", "{tmp}/broken.yaml"],
        "broken.yaml line 2: not valid YAML/JSON",
        names_files,
    ),
    C(
        "export",
        ["export-weights", "{run}", "--names", "{tmp}/comma.yaml", "--format", "llamafactory"],
        "has a comma",
        names_files,
    ),
    C("export", ["export-weights", "{run}", "--names", "{tmp}/number.yaml"], "names must be strings", names_files),
    C(
        "export",
        ["export-weights", "{run}", "--format", "megatron", "--names", "chat=/d/chat"],
        "Megatron needs a file prefix for every dataset; missing: code",
    ),
    C(
        "export",
        ["export-weights", "{run}", "--format", "megatron-args", "--names", "chat=/d/my chat,code=/d/code"],
        "has whitespace",
    ),
    C("export", ["export-weights", "{run}", "--schedule", "--average"], "--schedule: writes every window's weights"),
    C("export", ["export-weights", "{run}", "--out", "{tmp}"], "--out: {tmp} is a folder"),
    C("export", ["export-weights", "{run}", "--out", "{tmp}/afile/weights.json"], "a parent of it is a file", a_file),
    C("export", ["export-weights", "{run}"], "{run}/mixture.jsonl: not found", run_kind="no_log"),
    C(
        "export",
        ["export-weights", "{run}"],
        "{run}/metrics.json: not found; the run has not finished",
        run_kind="no_metrics",
    ),
    C("export", ["export-weights", "{run}"], "{run}/mixture.jsonl line 2: not valid JSON", run_kind="bad_line"),
    C(
        "export",
        ["export-weights", "{run}"],
        "{run}/mixture.jsonl line 1: weights must be finite, >= 0",
        run_kind="negative",
    ),
    C(
        "export",
        ["export-weights", "{run}"],
        "{run}/mixture.jsonl line 2: datasets ['chat', 'math'] differ",
        run_kind="renamed",
    ),
    C("export", ["export-weights", "{run}"], "{run}/metrics.json: not valid JSON", run_kind="bad_metrics"),
    C("export", ["export-weights", "{run}"], "{run}: run folder not found", run_kind="missing"),
    # ---- replay, report, compare: commands that read a run back or start several
    C("replay", ["replay", "{cfg}"], "{cfg} line 1: not valid JSON"),
    C(
        "replay",
        ["replay", "{run}"],
        "{run}/mixture.jsonl line 1: a mixture record needs an integer 'step' and a 'weights' object",
        run_kind="not_a_log",
    ),
    C("replay", ["replay", "{tmp}/nowhere"], "{tmp}/nowhere: mixture log not found"),
    C("replay", ["replay", "{run}", "--policy", "uniform"], "argument --policy: invalid choice: 'uniform'"),
    C("replay", ["replay", "{run}", "--eta", "-1"], "--eta: must be >= 0, got -1.0"),
    C("report", ["report", "{run}"], "{run}: not a moemix run folder (no mixture.jsonl)", run_kind="no_log"),
    C("report", ["report", "{run}"], "{run}/metrics.json: not valid JSON", run_kind="bad_metrics"),
    C("report", ["report", "{run}"], "{run}/mixture.jsonl line 2: not valid JSON", run_kind="bad_line"),
    C("compare", ["compare", "{cfg}", "--seeds", "a,b"], "--seeds: expected comma-separated integers, got 'a,b'"),
    C("compare", ["compare", "{cfg}", "--strategies", "uniform,dynamc"], "--strategies: unknown policy 'dynamc'"),
    # ---- eval and its code sandbox (the cases of the first eval test, moved here)
    C(
        "eval",
        ["eval", "{tmp}/target", *HE, "--timeout", "0"],
        "eval --timeout: must be a number of seconds > 0, got 0.0",
        eval_target,
    ),
    C(
        "eval",
        ["eval", "{tmp}/target", *HE, "--timeout", "-3"],
        "eval --timeout: must be a number of seconds > 0",
        eval_target,
    ),
    C(
        "eval",
        ["eval", "{tmp}/target", *HE, "--timeout", "nan"],
        "eval --timeout: must be a number of seconds > 0, got nan",
        eval_target,
    ),
    C(
        "eval",
        ["eval", "{tmp}/target", *HE, "--timeout", "inf"],
        "eval --timeout: must be a number of seconds > 0, got inf",
        eval_target,
    ),
    C("eval", ["eval", "{tmp}/target", *HE, "--memory-mb", "0"], "eval --memory-mb: must be >= 1, got 0", eval_target),
    C(
        "eval",
        ["eval", "{tmp}/target", *HE, "--memory-mb", "99999999"],
        "eval --memory-mb: at most 4194304",
        eval_target,
    ),
    C("eval", ["eval", "{tmp}/target", *HE, "--workers", "0"], "eval --workers: must be >= 1, got 0", eval_target),
    C(
        "eval",
        ["eval", "{tmp}/target", "--tasks", "humaneval", "--humaneval-file", "{tmp}/missing.jsonl"],
        "eval --humaneval-file: {tmp}/missing.jsonl: file not found",
        eval_target,
    ),
    C("eval", ["eval", "{tmp}/target", "--tasks", "mbpp"], "eval --tasks mbpp: give --mbpp-file", eval_target),
    C("eval", ["eval", "{tmp}/target", "--tasks", "humanevel"], "eval --tasks: unknown task 'humanevel'", eval_target),
    C("eval", ["eval", "{tmp}/target", "--limit", "0"], "eval --limit: must be >= 1, got 0", eval_target),
    C("eval", ["eval", "{tmp}/nowhere"], "eval: {tmp}/nowhere: not a run folder, model folder or builtin:smollm2"),
    C("eval", ["eval", "{tmp}/target", "--tasks", "gsm8k"], "eval --tasks gsm8k: give --gsm8k-file", eval_target),
    C(
        "eval",
        ["eval", "{tmp}/target", "--tasks", "devloss", "--config", "{cfg}"],
        "eval: {tmp}/target: no config.json or adapter_config.json",
        eval_target,
    ),
]

SUBPROCESS = [case for case in CASES if case.subprocess]
"""The cases also run from a fresh ``python -m moemix.cli``: the line and the exit status, with no traceback."""

# ------------------------------------------------------------------------------------------------ checking


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root``: files by size and modification time, so a rewrite shows."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel] = ("dir",)
        else:
            st = path.stat()
            out[rel] = (st.st_size, st.st_mtime_ns)
    return out


def check_error(code: int, out: str, err: str, expected: str) -> None:
    """Exit 2, one line ``moemix: error: ...`` holding ``expected``, no traceback."""
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {err[-2000:]}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{err[-3000:]}"
    assert lines[0].startswith("moemix: error: "), lines[0]
    assert expected in lines[0], f"\nexpected: {expected}\n     got: {lines[0]}"
    assert "Traceback" not in out + err


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One moemix cache for the module (builtin tokenizer, tokenised splits): outside every case's folder."""
    return tmp_path_factory.mktemp("moemix-cache")


@pytest.fixture(autouse=True)
def _env(cache, monkeypatch):
    monkeypatch.setenv("MOEMIX_CACHE", str(cache))


@pytest.fixture(scope="module")
def background(tmp_path_factory, cache):
    """The subprocess cases, started at once in the background (each is seconds of imports)."""
    started = {}
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "MOEMIX_CACHE": str(cache),
    }
    for case in SUBPROCESS:
        tmp = tmp_path_factory.mktemp("subprocess")
        world = make_world(tmp, case.run_kind)
        if case.setup is not None:
            case.setup(world)
        before = snapshot(tmp)
        argv = [arg.format(**world.fill) for arg in case.argv]
        proc = subprocess.Popen(
            [sys.executable, "-m", "moemix.cli", *argv],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[case.id] = (proc, world, before)
    yield started
    for proc, *_ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module", autouse=True)
def _start_background(background):
    """Start the subprocess cases with the module's first test, so they run while the in-process ones do."""


@pytest.mark.timeout(180)  # a hang (the 50 MB line once took over 15 minutes) fails instead of stalling the suite
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys, monkeypatch):
    if case.needs_absent and installed(case.needs_absent):
        pytest.skip(f"{case.needs_absent} is installed: the case checks the message for its absence")
    world = make_world(tmp_path, case.run_kind)
    try:
        if case.setup is not None:
            case.setup(world)
        fill = world.fill
        monkeypatch.chdir(tmp_path)  # a relative path written by mistake lands here, where the snapshot sees it
        before = snapshot(tmp_path)
        capsys.readouterr()
        code = main([arg.format(**fill) for arg in case.argv])
        captured = capsys.readouterr()
        check_error(code, captured.out, captured.err, case.expected.format(**fill))
        assert snapshot(tmp_path) == before  # nothing half-written, no folder or temporary file left
    finally:
        for undo in world.cleanup:
            undo()


@pytest.mark.parametrize("case", SUBPROCESS, ids=[c.id for c in SUBPROCESS])
def test_bad_input_from_a_fresh_process(case, background):
    proc, world, before = background[case.id]
    out, err = proc.communicate(timeout=300)
    check_error(proc.returncode, out, err, case.expected.format(**world.fill))
    assert snapshot(world.tmp) == before


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "--datasets.0.path=hf:moemix-bad-input/no-such-dataset",
            (
                "hf:moemix-bad-input/no-such-dataset: not in the "
                "local Hugging Face cache, and the Hugging Face Hub ({host}) cannot be reached"
            ),
        ),
        (
            "--model.name_or_path=moemix-bad-input/no-such-model",
            (
                "model.name_or_path: 'moemix-bad-input/no-such-model' "
                "is no local folder, not in the local Hugging Face cache, "
                "and the Hugging Face Hub ({host}) cannot be reached"
            ),
        ),
    ],
)
def test_hub_ids_without_network_read_only_the_cache(override, expected, tmp_path, capsys, monkeypatch):
    """Without a network, Hub ids are looked up in the local cache only (the libraries' offline mode), so the
    answer is one line at once: no request is made, so none is retried (there were 11 lines, ~25 s, of them)."""
    from huggingface_hub import constants

    from moemix.hub import hub_unreachable

    if hub_unreachable() is None:
        pytest.skip("the Hub can be reached here: the libraries answer themselves")
    world = make_world(tmp_path)
    extra = ["--model.tiny=null"] if "model" in override else []
    monkeypatch.chdir(tmp_path)
    code = main(["train", str(world.cfg), override, *extra])
    captured = capsys.readouterr()
    check_error(code, captured.out, captured.err, expected.format(host=constants.ENDPOINT.split("//")[-1]))
    assert not constants.HF_HUB_OFFLINE  # offline only while moemix looked: the user's setting is back


def test_the_matrix_is_big_and_covers_every_group():
    groups = {case.group for case in CASES}
    assert len(CASES) >= 50
    assert {"config", "data", "overrides", "model", "output", "resume", "export", "eval"} <= groups


def test_the_good_input_passes(tmp_path, capsys, monkeypatch):
    """The control: the input every case breaks one thing of is valid, so each case fails for its own change."""
    world = make_world(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["data", "validate", str(world.cfg)]) == 0, capsys.readouterr().err
    assert main(["export-weights", str(world.run), "--out", str(tmp_path / "w.json")]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "error" not in captured.err
