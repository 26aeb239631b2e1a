"""The bubblewrap (``bwrap``) command that shuts a generated program in.

Inside, the program sees:

- its own PID namespace: the host's processes are invisible, and when the namespace's first process ends (or is
  killed) the kernel kills every process left in it, ``setsid`` ones included;
- its own network namespace: no interface but a loopback of its own, so nothing on the host or beyond answers;
- the host's file system read-only, with the user's home, ``/tmp``, ``/var/tmp`` and ``/run`` (where sockets of
  other services live) replaced by empty read-only folders, except for the interpreter's own install;
- one writable folder, ``/tmp/work``: a size-capped tmpfs holding ``program.py``, its working folder, ``HOME``
  and ``TMPDIR``, gone when it ends; and a small ``/dev/shm``;
- an environment of a few fixed variables, no capabilities and no way to make a user namespace of its own.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WORK = "/tmp/work"
"""The program's working folder inside the sandbox."""

_HIDDEN = ("/tmp", "/var/tmp", "/run")


def _hidden_and_kept() -> tuple[list[str], list[str]]:
    """The folders replaced by empty ones, and the interpreter's folders inside them that must stay visible."""
    home = os.path.realpath(os.path.expanduser("~"))
    hidden = list(dict.fromkeys(d for d in (*_HIDDEN, home) if d != "/" and os.path.isdir(d)))
    exe = os.path.realpath(sys.executable)
    interpreter = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    interpreter |= {os.path.dirname(exe), os.path.dirname(os.path.dirname(exe))}
    inside = sorted(p for p in interpreter if os.path.isdir(p) and any(p.startswith(d + os.sep) for d in hidden))
    # A kept folder inside another kept folder comes with it.
    return hidden, [p for p in inside if not any(p.startswith(q + os.sep) for q in inside if q != p)]


def command(
    program: str | Path, argv: list[str], env: dict[str, str], work_mb: int, info_fd: int, bwrap: str | None = None
) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` on ``program`` (bound as ``/tmp/work/program.py``).

    Args:
        program: The program file on the host (bound read-only).
        argv: The command to run inside, e.g. ``[python, "-I", "-c", bootstrap]``.
        env: The whole environment of the command inside.
        work_mb: Size of the writable ``/tmp/work``, in MiB.
        info_fd: A descriptor bwrap writes ``{"child-pid": N}`` to: the host pid of the namespace's first
            process, whose end ends every process of the namespace.
        bwrap: The bwrap executable (default: the one on PATH).
    """
    args = [
        bwrap or shutil.which("bwrap") or "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--info-fd",
        str(info_fd),
        "--ro-bind",
        "/",
        "/",
    ]
    hidden, keep = _hidden_and_kept()
    for folder in hidden:
        args += ["--tmpfs", folder]
    for folder in keep:
        args += ["--ro-bind", folder, folder]
    args += [
        "--dev",
        "/dev",
        "--size",
        str(16 << 20),
        "--tmpfs",
        "/dev/shm",
        "--proc",
        "/proc",
        "--size",
        str(work_mb << 20),
        "--tmpfs",
        WORK,
        "--ro-bind",
        str(program),
        f"{WORK}/program.py",
    ]
    for folder in hidden:  # not recursive: /tmp/work, mounted on /tmp, stays writable
        args += ["--remount-ro", folder]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return [*args, "--chdir", WORK, "--", *argv]


@functools.cache
def unusable_reason() -> str | None:
    """None when bwrap is here and can make its namespaces (it cannot in some containers), else why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="moemix-probe-") as folder:
        program = Path(folder) / "program.py"
        program.write_text("")
        read, write = os.pipe()
        try:
            argv = command(program, [sys.executable, "-I", "-c", "pass"], {"PATH": "/usr/bin:/bin"}, 1, write, bwrap)
            done = subprocess.run(
                argv, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60, pass_fds=(write,)
            )
        except (OSError, subprocess.SubprocessError) as err:
            return f"bwrap could not start ({err})"
        finally:
            os.close(read)
            os.close(write)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"bwrap failed: {lines[-1] if lines else f'exit status {done.returncode}'}"
    return None
