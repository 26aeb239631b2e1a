"""Run generated Python programs in a separate process with a time limit and resource limits.

Generated code never runs in the moemix process. Each program is written to a fresh temporary folder and run by
a new interpreter (``python -I``: no user site, no environment-driven imports), in its own session so that the
whole process group can be killed at the deadline, which first caps its own address space, CPU time, file size,
open files and core dumps with ``resource.setrlimit``; standard input is closed and output goes to size-capped
files.

This contains mistakes (infinite loops, memory blow-ups, a crash, a runaway print), not an attacker: the child
runs as the same user with the same file-system and network access. Evaluate untrusted models' code inside a
container or VM, as the HumanEval authors advise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PASSED = "passed"
FAILED = "failed"
TIMEOUT = "timeout"

_OUTPUT_LIMIT = 1 << 20  # bytes a program may write to stdout or stderr (RLIMIT_FSIZE on its output files)


@dataclass(frozen=True)
class Execution:
    """The outcome of one program.

    Attributes:
        status: ``passed`` (exit status 0), ``failed`` (non-zero exit or killed by a limit other than time) or
            ``timeout`` (still running at the deadline; its process group was killed).
        returncode: The exit status (negative: the signal that ended it); None after a timeout.
        seconds: Wall time until it ended or was killed.
        stderr: The last 2,000 characters of its standard error (the failing assertion, the traceback).
    """

    status: str
    returncode: int | None
    seconds: float
    stderr: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def _bootstrap(memory_bytes: int, cpu_seconds: int) -> str:
    """The child's first code: set its resource limits, then run ``program.py`` as ``__main__``.

    The limits are set by the child itself rather than in a ``preexec_fn``, which is unsafe when the parent has
    threads (several programs are started from a thread pool).
    """
    limits = [
        ("RLIMIT_AS", memory_bytes),
        ("RLIMIT_CPU", cpu_seconds),
        ("RLIMIT_FSIZE", _OUTPUT_LIMIT),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_NOFILE", 64),
    ]
    return (
        "import resource, runpy, sys\n"
        f"for name, value in {limits!r}:\n"
        "    resource.setrlimit(getattr(resource, name), (value, value))\n"
        "sys.argv = ['program.py']\n"
        "runpy.run_path('program.py', run_name='__main__')\n"
    )


def run_program(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> Execution:
    """Run a Python program in a fresh, resource-limited interpreter and report how it ended.

    Args:
        program: The source text (e.g. a candidate function followed by its tests).
        timeout: Wall-clock seconds before the process group is killed.
        memory_mb: Address-space limit of the child, in MiB (``RLIMIT_AS``).

    Returns:
        The :class:`Execution`.
    """
    with tempfile.TemporaryDirectory(prefix="moemix-exec-") as folder:
        root = Path(folder)
        source = root / "program.py"
        source.write_text(program, encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0", "HOME": folder,
               "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.perf_counter()
        with open(root / "stdout", "wb") as out, open(root / "stderr", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", _bootstrap(memory_mb << 20, int(timeout) + 1)],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: the kill below takes its children too
            )
            try:
                returncode = proc.wait(timeout=timeout)
                status = PASSED if returncode == 0 else FAILED
            except subprocess.TimeoutExpired:
                _kill_group(proc)  # the leader is alive, so its group id is still its own
                returncode, status = None, TIMEOUT
        seconds = time.perf_counter() - started
        stderr = (root / "stderr").read_bytes()[-2000:].decode("utf-8", "replace")
    if returncode == -signal.SIGXCPU:
        status = TIMEOUT  # the CPU-time limit fired before the wall clock did
    return Execution(status, returncode, round(seconds, 3), stderr)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_programs(programs: list[str], timeout: float = 10.0, memory_mb: int = 1024, workers: int = 2) -> list[Execution]:
    """Run several programs, ``workers`` at a time (each in its own process), results in input order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: run_program(p, timeout, memory_mb), programs))
