"""Run generated Python programs shut in, with a time limit and resource limits.

Generated code never runs in the moemix process. Each program runs in a new interpreter (``python -I``) inside
bubblewrap (:mod:`moemix.eval.bubblewrap`): its own empty, size-capped working folder and nothing else writable,
no network, no view of the host's processes or of moemix's environment, and a PID namespace whose processes all
die when the program ends or is killed at its deadline, ``setsid`` ones included. The child first caps its own
address space, CPU time, file size, open files, core dumps and number of processes with ``resource.setrlimit``;
when moemix runs as root, where the kernel does not enforce the process limit, a pids cgroup
(:mod:`moemix.eval.pidcgroup`) enforces it. Standard input is closed and output goes to size-capped files.

Where bubblewrap is missing or cannot make namespaces (some containers), programs run as plain child processes
with the same limits, their process group (and cgroup, as root) killed at the end, and a warning says once what
that leaves open: the program can then read and write the user's files and reach the network.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from moemix.eval import bubblewrap, pidcgroup

logger = logging.getLogger(__name__)

PASSED = "passed"
FAILED = "failed"
TIMEOUT = "timeout"

MAX_PROCESSES = 32
"""Processes (and threads) a program may have at once, itself included."""

WORK_MB = 64
"""Size of a shut-in program's writable working folder, in MiB."""

_OUTPUT_LIMIT = 1 << 20  # bytes a program may write to stdout or stderr (RLIMIT_FSIZE on its output files)
_PATH = "/usr/local/bin:/usr/bin:/bin"
_warned: set[str] = set()


@dataclass(frozen=True)
class Execution:
    """The outcome of one program.

    Attributes:
        status: ``passed`` (exit status 0), ``failed`` (non-zero exit or killed by a limit other than time) or
            ``timeout`` (still running at the deadline; every process it started was killed).
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


def isolation() -> str:
    """``"bubblewrap"`` when programs are shut in, else ``"none: <why>"`` (the fallback)."""
    reason = bubblewrap.unusable_reason()
    return "bubblewrap" if reason is None else f"none: {reason}"


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _bootstrap(memory_bytes: int, cpu_seconds: int, processes: int) -> str:
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
        ("RLIMIT_NPROC", processes),
    ]
    return (
        "import resource, runpy, sys\n"
        f"for name, value in {limits!r}:\n"
        "    resource.setrlimit(getattr(resource, name), (value, value))\n"
        "sys.argv = ['program.py']\n"
        "runpy.run_path('program.py', run_name='__main__')\n"
    )


def _user_processes() -> int:
    """Processes of this real user on the machine: without a user namespace, RLIMIT_NPROC counts them all."""
    uid, count = str(os.getuid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    count += line.split()[1] == uid
                    break
        except OSError:
            continue
    return count


def _check_limits(timeout: float, memory_mb: int, max_processes: int) -> None:
    if not (timeout > 0 and timeout < float("inf")):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    if not 1 <= memory_mb <= 1 << 22:
        raise ValueError(f"memory_mb must be in 1..{1 << 22}, got {memory_mb}")
    if max_processes < 1:
        raise ValueError(f"max_processes must be >= 1, got {max_processes}")


def run_program(
    program: str, timeout: float = 10.0, memory_mb: int = 1024, max_processes: int = MAX_PROCESSES
) -> Execution:
    """Run a Python program shut in (see the module's docstring) and report how it ended.

    When this returns, every process the program started has ended.

    Args:
        program: The source text (e.g. a candidate function followed by its tests).
        timeout: Wall-clock seconds before all of its processes are killed.
        memory_mb: Address-space limit of each of its processes, in MiB (``RLIMIT_AS``).
        max_processes: Processes and threads it may have at once, itself included.

    Returns:
        The :class:`Execution`.

    Raises:
        ValueError: For a timeout, memory or process limit out of range.
    """
    _check_limits(timeout, memory_mb, max_processes)
    reason = bubblewrap.unusable_reason()
    if reason is not None:
        _warn_once(
            f"generated code runs unisolated ({reason}): it can read and write your files, read moemix's "
            "environment through /proc and reach the network; only time, memory, file-size and process limits "
            "apply. Install bubblewrap (apt-get install bubblewrap) to shut it in."
        )
    # Under bwrap the cgroup also counts its two processes outside the program: its monitor and the namespace's init.
    outside = 2 if reason is None else 0
    cgroup, why_not = pidcgroup.create(max_processes + outside) if os.geteuid() == 0 else (None, "")
    if os.geteuid() == 0 and cgroup is None:
        _warn_once(f"generated code runs without a process limit: root is exempt from RLIMIT_NPROC and {why_not}")
    try:
        with tempfile.TemporaryDirectory(prefix="moemix-exec-") as folder:
            return _run(program, Path(folder), timeout, memory_mb, max_processes, reason is None, cgroup)
    finally:
        if cgroup is not None:
            cgroup.close()


def _run(program, folder, timeout, memory_mb, max_processes, isolated, cgroup) -> Execution:
    source = folder / "program.py"
    source.write_text(program, encoding="utf-8")
    work = bubblewrap.WORK if isolated else str(folder)
    env = {"PATH": _PATH, "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"}
    # In a fresh user namespace RLIMIT_NPROC counts the namespace's processes (its init is one more);
    # without one, every process of this user on the machine.
    processes = max_processes + 1 if isolated else _user_processes() + max_processes
    argv = [sys.executable, "-I", "-B", "-c", _bootstrap(memory_mb << 20, int(timeout) + 1, processes)]
    pass_fds: tuple[int, ...] = ()
    info_read = None
    if isolated:
        info_read, info_write = os.pipe()
        pass_fds = (info_write,)
        argv = bubblewrap.command(source, argv, env, WORK_MB, info_write)
        env = {"PATH": _PATH}  # bwrap's own environment, which the namespace's init shows in /proc/1/environ
    if cgroup is not None:
        argv = cgroup.wrap(argv)
    started = time.perf_counter()
    try:
        with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
            proc = subprocess.Popen(
                argv,
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=pass_fds,
                start_new_session=True,  # its own process group, killed with all its members at the end
            )
    except BaseException:
        for fd in (*pass_fds, info_read):
            if fd is not None:
                os.close(fd)
        raise
    init = None
    if info_read is not None:
        os.close(pass_fds[0])
        init = _namespace_init(info_read, timeout)
    try:
        returncode = proc.wait(timeout=max(timeout - (time.perf_counter() - started), 0.001))
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        _end_all(proc, init, cgroup)
    seconds = time.perf_counter() - started
    stderr = (folder / "stderr").read_bytes()[-2000:].decode("utf-8", "replace")
    if isolated and returncode is not None and returncode > 128:
        returncode = 128 - returncode  # bwrap reports a child killed by signal N as exit status 128 + N
    if returncode is None or returncode == -signal.SIGXCPU:  # the CPU-time limit may fire before the wall clock
        return Execution(TIMEOUT, returncode, round(seconds, 3), stderr)
    return Execution(PASSED if returncode == 0 else FAILED, returncode, round(seconds, 3), stderr)


def _namespace_init(info_read: int, timeout: float) -> int | None:
    """A pidfd (or None) of the PID namespace's first process, from what bwrap writes to ``--info-fd``."""
    # bwrap writes the JSON in several writes and closes the descriptor after the last: read to its end (closing
    # ours early would kill bwrap with SIGPIPE).
    data, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([info_read], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(info_read, 65536) if ready else b""
            if not chunk:
                break
            data += chunk
    finally:
        os.close(info_read)
    try:
        return os.pidfd_open(int(json.loads(data.decode())["child-pid"]))
    except (ValueError, KeyError, OSError):
        return None  # bwrap failed before starting it; there is nothing inside to kill


def _end_all(proc: subprocess.Popen, init: int | None, cgroup: pidcgroup.PidCgroup | None) -> None:
    """Kill every process the program started, whether it ended or timed out, then reap the launcher.

    Killing the namespace's first process makes the kernel kill the rest of the namespace; the launcher's
    process group and the cgroup catch what runs outside one (the fallback).
    """
    if init is not None:
        try:
            signal.pidfd_send_signal(init, signal.SIGKILL)
        except OSError:
            pass  # already ended
        try:
            proc.wait(timeout=30)  # bwrap's monitor exits only after the namespace's first process has, and
        except subprocess.TimeoutExpired:  # that one only after the kernel has killed all the others
            pass
        os.close(init)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if cgroup is not None:
        cgroup.kill_all()


def run_programs(
    programs: list[str],
    timeout: float = 10.0,
    memory_mb: int = 1024,
    workers: int = 2,
    max_processes: int = MAX_PROCESSES,
) -> list[Execution]:
    """Run several programs, ``workers`` at a time (each shut in on its own), results in input order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: run_program(p, timeout, memory_mb, max_processes), programs))
