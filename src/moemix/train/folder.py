"""One run per output folder: a lock held for the whole run, and nothing left behind by a run that never started.

The main process takes a lock in the folder (``.moemix.lock``, the ``filelock`` package: an OS lock that dies
with the process, so a killed run never leaves it stuck) and writes who holds it (``.moemix.lock.json``: pid,
host, start time) for the message a second run prints. A run that fails before training removes the folders
it created and nothing that was there before; checkpoint folders a killed run left half written (no
``moemix_state.json``) are removed once the next run has passed its checks and starts
(:meth:`RunFolder.remove_torn_checkpoints`), so a run that fails to start changes nothing in the folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import filelock

from moemix.errors import MoemixError
from moemix.files import write_json_atomic
from moemix.train.checkpoint import incomplete_checkpoints

logger = logging.getLogger(__name__)

LOCK_FILE = ".moemix.lock"
HOLDER_FILE = ".moemix.lock.json"


class RunFolder:
    """The output folder of one run, locked by the main process until :meth:`release` (or the process ends).

    Use :meth:`open`; other processes of a multi-process run get a folder that neither locks nor removes.

    Attributes:
        path: The output folder.
        created: The folders this run created, outermost first (removed again by :meth:`abandon`).
    """

    def __init__(self, path: Path, created: list[Path], lock: filelock.BaseFileLock | None):
        self.path = path
        self.created = created
        self._lock = lock

    @classmethod
    def open(cls, output_dir: str | Path, main: bool = True) -> RunFolder:
        """Create the folder if needed and lock it.

        Args:
            output_dir: The run's output folder.
            main: Whether this is the main process (the only one that creates, locks and cleans).

        Returns:
            The locked folder.

        Raises:
            MoemixError: If ``output_dir`` is a file or cannot be created, or another run holds the folder.
        """
        path = Path(output_dir)
        if path.exists() and not path.is_dir():
            raise MoemixError(f"output_dir {path}: is a file, not a folder; choose another output_dir")
        if not main:
            return cls(path, [], None)
        created = [p for p in (path, *path.parents) if not p.exists()][::-1]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise MoemixError(f"output_dir {path}: cannot create the folder ({err.strerror or err})") from None
        folder = cls(path, created, filelock.FileLock(path / LOCK_FILE))
        try:
            folder._lock.acquire(timeout=0)
        except filelock.Timeout:
            folder._lock = None
            folder.abandon()
            raise MoemixError(
                f"output_dir {path}: {folder.holder()}; wait for it or choose another output_dir"
            ) from None
        write_json_atomic(
            path / HOLDER_FILE,
            {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")},
        )
        return folder

    def remove_torn_checkpoints(self) -> None:
        """Remove the checkpoint folders a killed run left half written (main process; once the run starts)."""
        if self._lock is None:
            return
        for checkpoint in incomplete_checkpoints(self.path):
            logger.warning("removing %s: a checkpoint left half written (no moemix state)", checkpoint)
            shutil.rmtree(checkpoint)

    def holder(self) -> str:
        """Who holds the folder's lock, in words (read from the holder file)."""
        try:
            info = json.loads((self.path / HOLDER_FILE).read_text(encoding="utf-8"))
            return (
                f"another moemix run is writing to it (pid {info['pid']} on host {info['host']}, "
                f"since {info['started']})"
            )
        except (OSError, ValueError, KeyError):  # the holder is between taking the lock and writing the file
            return "another moemix run is writing to it"

    def release(self) -> None:
        """Release the lock and remove the lock files (the folder keeps only what the run wrote)."""
        if self._lock is None:
            return
        # Removed while still held: a run that opens the old file meanwhile finds it locked and stops.
        for name in (HOLDER_FILE, LOCK_FILE):
            (self.path / name).unlink(missing_ok=True)
        self._lock.release()
        self._lock = None

    def abandon(self) -> None:
        """After a failure before training: release, and remove the folders this run created (only those)."""
        self.release()
        if not self.created:
            return
        shutil.rmtree(self.created[-1], ignore_errors=True)  # the output folder: this run's alone
        for parent in reversed(self.created[:-1]):  # ancestors only if still empty: another run may use them
            try:
                parent.rmdir()
            except OSError:
                break
