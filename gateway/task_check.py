"""Does the task fit the stream? Judged once, after the first readings, by pure counting.

A task names channels (its features' and its target); a stream that never carries one of them
would have every reading refused as ``missing_channel`` forever, and a binary task whose
target is never 0 or 1 every reading as ``target_not_binary``: the gateway would run on and
learn nothing. :class:`ChannelPresence` counts, per channel, the readings that carried a value
(the pending block adds each block's columns); :func:`task_problem` judges, once ``after``
readings have come in: a channel present in none of them, or a binary target refused in every
reading that got that far and none learned, is a problem, said in one line. A channel that is
merely sometimes missing (real gaps) is no problem: the cleaning handles it.

>>> seen = ChannelPresence(("temp", "nosuch", "y"))
>>> seen.add([[1.0, 2.0], [None, None], [3.0, None]])
>>> seen.readings, seen.present
(2, [2, 0, 1])
>>> task_problem(seen, after=2, not_binary=0, admitted=1)
"task does not fit the stream: channel 'nosuch' was in none of the first 2 readings"
>>> task_problem(seen, after=3, not_binary=0, admitted=1) is None     # too early to say
True
>>> task_problem(ChannelPresence(("a", "y")), after=0, not_binary=0, admitted=0) is None
True
>>> full = ChannelPresence(("a", "y")); full.add([[1.0], [2.0]])
>>> print(task_problem(full, after=1, not_binary=1, admitted=0).split(": ")[1])
the binary task's target y was neither 0 nor 1 in 1 of the first 1 readings (none learned)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.reading_codec import decode_reading_items
from broker.wire import DecodeError

#: What :func:`task_problem`'s line starts with (``up`` finds it in a gateway's log by it).
PREFIX = "task does not fit the stream"
#: The exit code of a gateway (and of ``up``) that stopped because the task does not fit.
EXIT_TASK_UNFIT = 4


class TaskUnfit(RuntimeError):
    """The task names what the stream does not carry (exit code :data:`EXIT_TASK_UNFIT`)."""


@dataclass
class ChannelPresence:
    """Per channel (the task's, the target last): readings that carried a value."""

    channels: tuple[str, ...]
    readings: int = 0
    present: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.present = self.present or [0] * len(self.channels)

    def add(self, columns: Sequence[list[Any]], refused: int = 0) -> None:
        """One block's columns (None: missing); ``refused``: rows refused before their values
        were read (all None), not counted as readings."""
        if not columns:
            return
        self.readings += len(columns[0]) - refused
        for c, column in enumerate(columns):
            self.present[c] += len(column) - column.count(None)


def task_problem(seen: ChannelPresence, after: int, not_binary: int, admitted: int
                 ) -> str | None:
    """The task's problem in one line, once ``after`` (> 0) readings came in; else None."""
    if after <= 0 or seen.readings < after:
        return None
    absent = [c for c, n in zip(seen.channels, seen.present, strict=True) if n == 0]
    n = seen.readings
    if absent:
        which = ", ".join(f"'{c}'" for c in absent)
        return (f"{PREFIX}: channel{'s' if len(absent) > 1 else ''} {which} "
                f"{'were' if len(absent) > 1 else 'was'} in none of the first {n} readings")
    if not_binary and not admitted:
        return (f"{PREFIX}: the binary task's target {seen.channels[-1]} was neither 0 nor 1 "
                f"in {not_binary} of the first {n} readings (none learned)")
    return None


def carried(names: Iterable[Iterable[str]]) -> str:
    """The channels some readings carry, sorted, for the line that says what is missing.

    >>> carried([{"b": 1, "a": 2}, {"c": 3}])
    'a, b, c'
    """
    return ", ".join(sorted({name for keys in names for name in keys})) or "none"


def channels_of(payloads: list[bytes], max_payload: int) -> list[dict]:
    """The channels of the readings in (the last few of) ``payloads``: what they carry.

    >>> carried(channels_of([b'{"device":"d","seq":0,"ts":0.0,"values":{"b":1.0,"a":2.0}}',
    ...                      b'not json'], 1000))
    'a, b'
    """
    out = []
    for payload in payloads[-16:]:
        try:
            items = decode_reading_items(payload, max_payload)
        except DecodeError:
            continue
        out += [item.values for item in items if not isinstance(item, DecodeError)]
    return out
