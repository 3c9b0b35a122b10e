"""The first stage of the gateway's pipeline: payloads decoded into the columns of a block.

:meth:`PendingBlock.take` decodes a payload (one reading, or a batch) into columns, checking
only ids and types; nothing is judged until the block is handed over
(:meth:`PendingBlock.hand_over`) to :meth:`gateway.pipeline.ReadingPipeline.flush`. A payload of
a known device that the fast path (:func:`gateway.intake.fast_columns`) recognises goes straight
in; any other goes reading by reading, each fault explained as a :class:`Rejected`.

>>> from gateway.cleaning import CleaningConfig
>>> from gateway.device_state import DeviceTable
>>> block = PendingBlock(("a", "y"), CleaningConfig(), DeviceTable(2, 4, 8, 3), {})
>>> block.take("d", b'{"device":"d","seq":1,"ts":5.0,"values":{"a":1.0}}', now=6.0)
1
>>> block.take("d", b'{"device":"x","seq":2,"ts":5.0,"values":{}}', now=6.0)
1
>>> taken = block.hand_over()
>>> taken.seq, taken.cols, [why.reason for why in taken.refused.values()], block.pending
([1, 0], [[1.0, None], [None, None]], ['id_mismatch'], 0)
>>> taken.boot
[0, 0]
>>> block.presence.readings, block.presence.present   # the refused reading is not counted
(1, [1, 0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from broker.messages import Reading
from broker.reading_codec import decode_reading_items
from broker.wire import DecodeError
from gateway.cleaning import CleaningConfig
from gateway.device_state import DeviceTable
from gateway.intake import INT64_MAX, fast_columns
from gateway.task_check import ChannelPresence
from gateway.validation import Rejected, check_reading


@dataclass
class Taken:
    """A block's readings as taken, in arrival order, and the messages they came in."""

    refs: list[Any]  # per message: what take() was given as ref
    payloads: list[bytes]
    counts: np.ndarray  # readings per message
    dev: np.ndarray  # per reading: its device's row in the table (-1: refused before)
    now: np.ndarray
    site: np.ndarray  # the site's index, or -1
    seq: list[int]
    boot: list[int]  # the boot id (0 where none was sent)
    ts: list[float]
    cols: list[list[Any]]  # per channel: the values, None where missing
    refused: dict[int, Rejected]  # readings refused while taking, by position
    site_names: tuple[str, ...] = ()  # per message: its topic's site
    message_rows: tuple[int, ...] = ()  # per message: its device's row (-1: refused before)


class PendingBlock:
    """Readings taken since the last hand-over, as columns."""

    def __init__(self, channels: tuple[str, ...], config: CleaningConfig, table: DeviceTable,
                 sites: dict[str, int]) -> None:
        self.channels = channels
        self.config = config
        self.table = table
        self.sites = sites
        #: Per channel, the readings handed over that carried a value (all blocks so far).
        self.presence = ChannelPresence(channels)
        self._clear()

    def _clear(self) -> None:
        # per message: (ref, payload, readings, device row or -1, now, site index or -1, site)
        self._messages: list[tuple[Any, bytes, int, int, float, int, str]] = []
        self._seq: list[int] = []
        self._boot: list[int] = []
        self._ts: list[float] = []
        self._cols: list[list[Any]] = [[] for _ in self.channels]
        self._refused: dict[int, Rejected] = {}
        self.pending = 0  # readings taken, not yet handed over

    def take(self, topic_device: str, payload: bytes, now: float, site: str = "",
             ref: Any = None) -> int:
        """Decode a payload (one reading, or a batch) into the block; returns its readings."""
        row = self.table.rows.get(topic_device)
        columns = None
        if row is not None and len(payload) <= self.config.max_payload:
            columns = fast_columns(payload, topic_device, self.channels)
        if columns is None:
            return self._take_carefully(topic_device, payload, now, site, ref)
        seqs, tss, cols, boots = columns
        n = len(seqs)
        self._messages.append((ref, payload, n, row, now, self.sites.get(site, -1), site))
        self.pending += n
        self._seq += seqs
        self._boot += boots
        self._ts += tss
        for mine, theirs in zip(self._cols, cols, strict=True):
            mine += theirs
        return n

    def _take_carefully(self, topic_device: str, payload: bytes, now: float, site: str,
                        ref: Any) -> int:
        """The slow path: each reading decoded and checked on its own, each fault explained."""
        try:
            items: list[Reading | DecodeError] = decode_reading_items(
                payload, self.config.max_payload)
        except DecodeError as exc:
            items = [exc]
        row = -1
        first = len(self._seq)
        for k, item in enumerate(items):
            try:
                if isinstance(item, DecodeError):
                    raise Rejected(item.reason, str(item))
                check_reading(topic_device, item, self.config.allowlist)
                if item.seq > INT64_MAX:
                    raise Rejected("schema", "reading field 'seq' must be below 2**63")
            except Rejected as refused:
                self._refused[first + k] = refused
                self._seq.append(0)
                self._boot.append(0)
                self._ts.append(0.0)
                for column in self._cols:
                    column.append(None)
                continue
            if row < 0:
                row = self.table.index(topic_device)
            self._seq.append(item.seq)
            self._boot.append(item.boot)
            self._ts.append(item.ts)
            values = item.values
            for name, column in zip(self.channels, self._cols, strict=True):
                column.append(values.get(name))
        self._messages.append((ref, payload, len(items), row, now, self.sites.get(site, -1),
                               site))
        self.pending += len(items)
        return len(items)

    @property
    def empty(self) -> bool:
        """No message taken since the last hand-over."""
        return not self._messages

    def hand_over(self) -> Taken:
        """The readings taken, per reading and per message; the block starts again empty."""
        refs, payloads, rows, devs, nows, sites, names = zip(*self._messages, strict=True)
        counts = np.asarray(rows, np.int64)
        taken = Taken(list(refs), list(payloads), counts,
                      np.repeat(np.asarray(devs, np.int64), counts),
                      np.repeat(np.asarray(nows, float), counts),
                      np.repeat(np.asarray(sites, np.int64), counts),
                      self._seq, self._boot, self._ts, self._cols, self._refused, names, devs)
        self.presence.add(self._cols, len(self._refused))
        self._clear()
        return taken
