"""The arrows of DESIGN.md point one way: every `import` of every module (function-level ones included), read
with `ast`, goes only where its package may look.

The table, from DESIGN.md and the code:

- errors, files: the floor; files knows only errors.
- config (the schema): errors only. transformers only for TrainingArguments' field types.
- mixing (pure policies): errors only; numpy, never torch, transformers or datasets.
- routing (MoE layers and routers of any model): errors only; no data, train or mixing.
- data (files, tokenizers, sampler): errors, config, files, and mixing (the pure core: the sampler checks
  weights with mixing.check_weights); never routing, models or train.
- models (loading, LoRA, tiny models, upcycling): errors, config, routing, and data.tokenizer only (the BPE
  trainer and the cache root); never train, eval, report or testing.
- report (plots, report, replay, export): errors, files, mixing; never torch, transformers or train.
- train (the CLI's recipe) and eval wire the parts together; eval may use train's dev loss. Neither imports
  the command line.
- extras, logs (checks and console set-up for the shell): errors only.
- hub (local path or Hub id; the Hub libraries offline when it cannot be reached): errors only; used by data
  (hf: ids) and models (from_pretrained).
- integrations (moemix inside a user's own Trainer, TRL or accelerate script, and LLaMA-Factory): the library
  layers below the shell (errors to train, extras, logs); never cli, flags or testing.
- flags, cli (the shell): anything but testing.
- testing (helpers for tests): models, data (built-in texts, the BPE trainer), and whatever a test helper
  needs; nothing imports it but tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "moemix"

# Where each package (or top-level module) of moemix may import from, within moemix.
ALLOWED: dict[str, set[str]] = {
    "moemix": set(),
    "errors": set(),
    "files": {"errors"},
    "config": {"errors"},
    "mixing": {"errors"},
    "routing": {"errors"},
    "data": {"errors", "config", "files", "mixing", "hub"},
    "models": {"errors", "config", "routing", "data.tokenizer", "hub"},
    "report": {"errors", "files", "mixing"},
    "train": {"errors", "config", "files", "mixing", "routing", "data", "models", "report", "extras", "logs"},
    "eval": {"errors", "config", "files", "data", "models", "train"},
    "extras": {"errors"},
    "hub": {"errors"},
    "logs": set(),
    "flags": {"errors", "config", "train"},
    "cli": {
        "errors",
        "config",
        "files",
        "mixing",
        "data",
        "models",
        "report",
        "train",
        "eval",
        "extras",
        "flags",
        "logs",
    },
    "integrations": {
        "errors",
        "config",
        "files",
        "mixing",
        "routing",
        "data",
        "models",
        "report",
        "train",
        "extras",
        "logs",
    },
    "testing": {"errors", "config", "data", "models", "routing", "train", "cli"},
}

# Third-party packages a package must not import at all.
FORBIDDEN_EXTERNAL: dict[str, set[str]] = {
    "mixing": {"torch", "transformers", "datasets", "yaml"},
    "config": {"torch", "datasets", "numpy"},
    "routing": {"datasets"},
    "report": {"torch", "transformers"},
    "errors": {"torch", "transformers", "numpy"},
    "extras": {"torch", "transformers"},
}


def _unit(module: str) -> str:
    """The table entry of a dotted moemix module: its package, or the top-level module's name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "moemix"


def _module_name(path: Path) -> str:
    name = ".".join(("moemix", *path.relative_to(SRC).with_suffix("").parts))
    return name.removesuffix(".__init__")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file, at any depth, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from moemix import config` names a module; `from moemix.config import X` names the module itself.
            if base == "moemix":
                found += [(node.lineno, f"moemix.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


MODULES = sorted(SRC.rglob("*.py"))


def test_the_table_covers_every_package():
    units = {_unit(_module_name(path)) for path in MODULES}
    assert units == set(ALLOWED), (
        f"add {sorted(units - set(ALLOWED))} to the table, drop {sorted(set(ALLOWED) - units)}"
    )


def test_the_table_has_no_cycle():
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for target in ALLOWED[start]:
            head = target.split(".")[0]
            if head == goal or (head not in seen and reaches(head, goal, seen | {head})):
                return True
        return False

    assert not [unit for unit in ALLOWED if reaches(unit, unit, {unit})]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_arrows(path):
    source = _unit(_module_name(path))
    wrong = []
    for line, target in _imports(path):
        top = target.split(".")[0]
        if top == "moemix":
            unit, rest = _unit(target), target.split(".", 1)[-1]
            allowed = unit == source or any(rest == a or rest.startswith(f"{a}.") for a in ALLOWED[source])
            if not allowed:
                wrong.append(f"line {line}: {target}")
        elif top in FORBIDDEN_EXTERNAL.get(source, ()):
            wrong.append(f"line {line}: {target} (third-party)")
    assert not wrong, f"{path.relative_to(SRC)} ({source}) imports across the arrows: {'; '.join(wrong)}"


def test_production_code_never_imports_testing():
    users = [
        str(path.relative_to(SRC))
        for path in MODULES
        if _unit(_module_name(path)) != "testing" and any(t.startswith("moemix.testing") for _, t in _imports(path))
    ]
    assert not users


@pytest.mark.parametrize("package", ["moemix.config", "moemix.mixing", "moemix.routing"])
def test_package_imports_alone(package):
    # What loads with the package at run time, __init__ chains included: the pure parts stay light.
    heavy = {
        "moemix.config": ["torch", "transformers", "moemix.mixing", "moemix.data"],
        "moemix.mixing": ["torch", "transformers", "moemix.data", "moemix.config"],
        "moemix.routing": ["moemix.data", "moemix.train", "moemix.mixing"],
    }[package]
    code = f"import sys, {package}; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    )
    assert not [m for m in heavy if m in loaded]
