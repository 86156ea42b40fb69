"""Files written whole or not at all: a crash, a ``kill -9`` or a concurrent writer never
leaves a partial file (checkpoints, their metadata, reports, caches)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_UMASK = os.umask(0o022)  # read once (setting it is the only way), then put back
os.umask(_UMASK)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through ``write(file)`` into a temporary file of this process, synced,
    then renamed over ``path``: a crash or a concurrent writer never leaves a partial file.
    ValueError when the folder cannot be written."""
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        os.fchmod(descriptor, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide it from the group
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_json_atomic(path: str | Path, data) -> None:
    """``write_atomic`` of ``data`` as indented JSON (NaN refused: it is not JSON)."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    write_atomic(path, lambda file: file.write(text.encode()))
