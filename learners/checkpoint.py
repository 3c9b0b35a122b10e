"""Checkpoints of the aggregator: written atomically, the last ``keep`` kept, the newest read.

Each is one JSON file ``ckpt-<version>.json``: written to a temporary file, fsynced, moved into
place with ``os.replace`` and the directory fsynced, so a crash leaves either the old file or
the new one, never half of one. Reading takes the newest file that parses, so a damaged newest
file falls back to the one before.

>>> import tempfile
>>> store = CheckpointStore(Path(tempfile.mkdtemp()), keep=2)
>>> for v in (1, 2, 3):
...     _ = store.save(v, {"version": v})
>>> [p.name for p in store.files()]
['ckpt-000000000002.json', 'ckpt-000000000003.json']
>>> store.latest()
{'version': 3}
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import orjson


class CheckpointStore:
    """A directory of checkpoints of one aggregator."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep at least one checkpoint")
        self.directory = Path(directory)
        self.keep = keep

    def files(self) -> list[Path]:
        """The checkpoints there are, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("ckpt-*.json"))

    def save(self, version: int, state: dict[str, Any]) -> Path:
        """Write the state of ``version`` atomically, then drop all but the newest ``keep``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"ckpt-{version:012d}.json"
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(state, option=orjson.OPT_SERIALIZE_NUMPY))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._sync_directory()
        for old in self.files()[:-self.keep]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        return path

    def latest(self) -> dict[str, Any] | None:
        """The newest checkpoint that can be read, or None."""
        for path in reversed(self.files()):
            try:
                state = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(state, dict):
                return state
        return None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
