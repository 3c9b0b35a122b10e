"""Checkpoints of the aggregator: written atomically, the last ``keep`` kept, the newest usable
one read.

Each is one JSON file ``ckpt-<version>.json``: written to a temporary file, fsynced, moved into
place with ``os.replace`` and the directory fsynced, so a crash leaves either the old file or
the new one, never half of one. A write that fails (a full disk) removes its temporary file and
raises :class:`CheckpointError`; :meth:`CheckpointStore.check` finds a directory that cannot be
written before anything else happens. Loading takes the newest file that parses and that the
caller accepts: a damaged one (truncated, a malformed field, another format) is logged as a
WARNING with its path and why, and the one before it is tried.

>>> import tempfile
>>> store = CheckpointStore(Path(tempfile.mkdtemp()), keep=2)
>>> store.check()
>>> for v in (1, 2, 3):
...     _ = store.save(v, {"version": v})
>>> [p.name for p in store.files()]
['ckpt-000000000002.json', 'ckpt-000000000003.json']
>>> store.latest()
{'version': 3}
>>> store.load(lambda state: None).name
'ckpt-000000000003.json'
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

#: What a malformed checkpoint raises when it is taken apart (a missing field, a wrong type).
DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError)


class CheckpointError(Exception):
    """A checkpoint directory that cannot be used, or a checkpoint that could not be written.
    ``kind`` names the failure (an errno name such as ``ENOSPC``)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def _kind(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


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

    def check(self) -> None:
        """Make the directory and prove a file can be written there, or raise
        :class:`CheckpointError`; remove temporary files a crash left."""
        probe = self.directory / ".write-test.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoints to {self.directory}: "
                                  f"{exc.strerror or exc}; use --state-dir DIR or "
                                  "--no-checkpoints", _kind(exc)) from None
        for stale in self.directory.glob("*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def save(self, version: int, state: dict[str, Any]) -> Path:
        """Write the state of ``version`` atomically, then drop all but the newest ``keep``;
        :class:`CheckpointError` (and no temporary file left) if it cannot be written."""
        path = self.directory / f"ckpt-{version:012d}.json"
        tmp = path.with_suffix(".json.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(state, option=orjson.OPT_SERIALIZE_NUMPY))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            self._sync_directory()
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}",
                                  _kind(exc)) from None
        for old in self.files()[:-self.keep]:
            with contextlib.suppress(OSError):
                old.unlink()
        return path

    def load(self, accept: Callable[[dict[str, Any]], None]) -> Path | None:
        """Hand the newest checkpoint that parses to ``accept``; if it raises one of
        :data:`DAMAGE`, log why and try the one before. The path accepted, or None."""
        for path in reversed(self.files()):
            try:
                state = orjson.loads(path.read_bytes())
                if not isinstance(state, dict):
                    raise ValueError(f"a JSON {type(state).__name__}, not an object")
                accept(state)
            except OSError as exc:
                why = f"unreadable: {exc.strerror or exc}"
            except orjson.JSONDecodeError as exc:
                why = f"not JSON (truncated?): {exc}"
            except KeyError as exc:
                why = f"field {exc} missing"
            except DAMAGE as exc:
                why = f"malformed: {exc}"
            else:
                return path
            log.warning("skipping checkpoint %s: %s", path, why,
                        extra={"path": str(path), "reason": why})
        return None

    def note_broadcasts(self, digests: list[str]) -> None:
        """Remember the digests of the newest models broadcast, written before each goes out
        (atomically; no fsync: a killed process loses nothing), so a restart knows a retained
        model newer than its checkpoint as its own (:mod:`learners.provenance`)."""
        path = self.directory / "broadcasts.json"
        tmp = path.with_suffix(".json.tmp")
        try:
            tmp.write_bytes(orjson.dumps(digests))
            os.replace(tmp, path)
        except OSError as exc:
            raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}",
                                  _kind(exc)) from None

    def broadcasts(self) -> list[str]:
        """The digests :meth:`note_broadcasts` wrote last ([] if none, or unreadable)."""
        try:
            found = orjson.loads((self.directory / "broadcasts.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return []
        return [d for d in found if isinstance(d, str)] if isinstance(found, list) else []

    def latest(self) -> dict[str, Any] | None:
        """The newest checkpoint that parses, or None."""
        found: list[dict[str, Any]] = []
        self.load(found.append)
        return found[0] if found else None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
