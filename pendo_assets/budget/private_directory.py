"""A directory only this user can write, for the state every process of a host shares."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

STALE_SECONDS = 7 * 24 * 3600  # files of a destination nobody sent to for a week go


class UnsafeDirectoryError(RuntimeError):
    """The directory exists but another user could write to it."""


def private_directory(path: str | os.PathLike[str] | None = None) -> Path:
    """`path`, or `$TMPDIR/pendo-assets-<uid>`, created mode 0700 and checked to be ours.

    Another user able to write there could slow every sync on the host down (or speed it past
    Pendo's limit), so a directory that is not ours alone is refused.
    """
    directory = Path(path or Path(tempfile.gettempdir()) / f"pendo-assets-{os.getuid()}")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise UnsafeDirectoryError(
            f"{directory} must be a directory owned by uid {os.getuid()} that only it can "
            "write (mode 0700); remove it or set PENDO_BUDGET_DIR to another path"
        )
    return directory


def remove_stale_files(directory: Path, *, older_than: float = STALE_SECONDS) -> int:
    """Remove files untouched for `older_than` seconds; how many went."""
    cutoff = time.time() - older_than
    removed = 0
    for entry in directory.iterdir():
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
        except FileNotFoundError:  # another process cleaned it first
            continue
    return removed
