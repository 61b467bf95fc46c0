"""Writing files so that a reader never sees half of one: temp file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path, write) -> None:
    """Call ``write(f)`` on a temp file next to ``path``, fsync, then ``os.replace`` it onto
    ``path``. On any error the temp file is removed and ``path`` is left untouched."""
    path = Path(path)
    d = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=d)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable; not possible everywhere
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_bytes(path, data: bytes) -> None:
    """``atomic_write`` of ``data``, creating the folder first."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))
