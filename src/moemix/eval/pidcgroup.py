"""A pids cgroup per generated program: a process limit that holds for root, and a kill of the whole tree.

``RLIMIT_NPROC`` is not enforced for processes whose real user is root (the kernel exempts it), so when moemix
runs as root a program's processes are counted by the cgroup ``pids`` controller instead: ``pids.max`` makes a
fork past the limit fail, whatever the user. The program's launcher joins the cgroup before it starts anything
(``sh -c 'echo $$ > cgroup.procs; exec ...'``), so every process it makes, ``setsid`` or not, is in it, and
killing what the cgroup lists kills them all. Used only where this process may create cgroups (root, with the
pids controller mounted writable); elsewhere :func:`create` returns None and says why.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

_PREFIX = "moemix-sandbox-"
_counter = itertools.count()
_swept = False


def _pids_root() -> tuple[Path | None, str]:
    """The folder under which a pids cgroup can be made, or None and the reason."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError as err:
        return None, f"/proc/self/mounts: {err.strerror}"
    for line in mounts:
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "cgroup" and "pids" in fields[3].split(","):
            return Path(fields[1]), ""
    for line in mounts:
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "cgroup2":
            root = Path(fields[1])
            try:
                enabled = (root / "cgroup.subtree_control").read_text().split()
            except OSError:
                enabled = []
            if "pids" in enabled:
                return root, ""
            return None, f"{root}: the pids controller is not enabled for child cgroups"
    return None, "no pids cgroup controller is mounted"


class PidCgroup:
    """One cgroup holding one program's processes; :meth:`close` kills them all and removes it."""

    def __init__(self, path: Path):
        self.path = path

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run from a shell that first moves itself into the cgroup, then ``exec``s it."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def processes(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup until none is left (processes forking meanwhile join it too)."""
        kill_file = self.path / "cgroup.kill"  # cgroup v2 kills the whole cgroup in one write
        if kill_file.exists():
            try:
                kill_file.write_text("1")
            except OSError:
                pass
        for _ in range(1000):
            pids = self.processes()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)

    def close(self) -> None:
        """Kill what is left and remove the cgroup (it can be removed once its last process has been reaped)."""
        self.kill_all()
        for _ in range(400):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.005)


def create(max_processes: int) -> tuple[PidCgroup | None, str]:
    """A fresh pids cgroup allowing ``max_processes`` processes, or ``(None, why not)``."""
    if os.geteuid() != 0:
        return None, "not running as root"
    root, reason = _pids_root()
    if root is None:
        return None, reason
    _sweep(root)
    path = root / f"{_PREFIX}{os.getpid()}-{next(_counter)}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(max_processes))
    except OSError as err:
        try:
            path.rmdir()
        except OSError:
            pass
        return None, f"{path}: {err.strerror}"
    return PidCgroup(path), ""


def _sweep(root: Path) -> None:
    """Remove the empty cgroups that moemix processes no longer alive left behind (a crash, a kill -9)."""
    global _swept
    if _swept:
        return
    _swept = True
    for folder in root.glob(f"{_PREFIX}*"):
        owner = folder.name[len(_PREFIX) :].split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                folder.rmdir()
            except OSError:
                pass
