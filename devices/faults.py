"""Seeded faults for a simulated fleet, and the ground truth of what each one must become.

Every message the injector emits carries ``expect``: what a gateway must make of it
(``admitted`` or a rejection reason). Numbered readings that are never sent (``lost``) are the
gaps a gateway must find. So a run's accounting can be checked against :attr:`expected`
exactly, reason by reason.

Faults that leave no readable (device, seq) — broken JSON, wrong types, NaN, oversized — are
sent *in addition to* the device's numbered stream: a gateway cannot tell which number an
undecodable payload had, so it could not count it as anything but a rejection plus a gap.

A ``restart`` reboots a device: what it held back goes out first, then it numbers again from 0
under its next boot id (its first ``warmup`` readings clean again); its old boot's losses below
the last number sent stay expected gaps. ``old_boot`` re-sends, after a restart, the device's
last message of its previous boot, which a gateway must refuse as ``old_boot``.

>>> from devices.simulator import FleetSimulator
>>> sim = FleetSimulator(2, 1, seed=0)
>>> inj = FaultInjector(sim, FaultRates.parse("all=0.2"), seed=0)
>>> out = [m for i in range(200) for m in inj.next(i % 2, ts=1000.0)] + inj.drain()
>>> sum(inj.expected.values()) == len(out)
True
>>> sorted(inj.expected)[:4]
['admitted', 'bad_id', 'duplicate', 'duplicate_key']
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import orjson

from broker.messages import Reading
from broker.reading_codec import encode_reading, reading_to_dict
from broker.wire import MAX_PAYLOAD_BYTES
from devices.fault_rates import DELIVERY_FAULTS, EXTRA_FAULTS, FAULTS, VALUE_FAULTS, FaultRates
from devices.simulator import FleetSimulator

__all__ = ["DELIVERY_FAULTS", "EXTRA_FAULTS", "FAULTS", "VALUE_FAULTS", "FaultInjector",
           "FaultRates", "Outgoing"]

ADMITTED = "admitted"


@dataclass(frozen=True)
class Outgoing:
    """One message to publish on ``{p}/{site}/{device}/reading``."""

    site: str
    device: str
    payload: bytes
    expect: str
    fault: str = ""
    seq: int | None = None  # the reading's number, for messages of the numbered stream


@dataclass
class _Held:
    message: Outgoing
    duplicate: bool
    release_after: int


@dataclass
class _DeviceFaults:
    held: list[_Held] = field(default_factory=list)
    noise_left: int = 0
    stuck_left: int = 0
    stuck_channel: str = ""
    stuck_value: float = 0.0
    lost: list[int] = field(default_factory=list)
    high_sent: int = -1
    closed_gaps: int = 0  # earlier boots' losses a gateway finds (below their last sent number)
    closed_lost: int = 0  # earlier boots' losses
    last_sent: Outgoing | None = None  # the boot's last numbered message
    old: Outgoing | None = None  # the previous boot's last numbered message


class FaultInjector:
    """Wraps a :class:`FleetSimulator`; turns each next reading into the messages to send."""

    def __init__(self, sim: FleetSimulator, rates: FaultRates, seed: int = 0,
                 max_payload: int = MAX_PAYLOAD_BYTES) -> None:
        self.sim = sim
        self.rates = rates
        self.max_payload = max_payload
        self.rng = np.random.default_rng([seed, 0xFA17])
        self.expected: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._state = [_DeviceFaults() for _ in sim.devices]
        self._features = [c for c in sim.truth.features]
        self._target = sim.truth.target

    def _hit(self, fault: str, per: int = 1) -> bool:
        rate = self.rates.rate(fault) / per
        if rate > 0.0 and self.rng.random() < rate:
            self.injected[fault] += 1
            return True
        return False

    def next(self, index: int, ts: float) -> list[Outgoing]:
        """Generate device ``index``'s next reading; return what to publish now, in order."""
        state = self._state[index]
        out: list[Outgoing] = []
        if self.sim.next_seq(index) >= self.rates.warmup and self._hit("restart"):
            out = self._restart(index, state)
        reading = self.sim.reading(index, ts)
        site = self.sim.devices[index].site
        if reading.seq < self.rates.warmup:
            return out + self._emit([self._message(site, reading, ADMITTED)], state)
        out += self._extras(site, reading, state)
        if self._hit("lost"):
            state.lost.append(reading.seq)
            return out + self._release(state)
        reading = self._damage_values(reading, state)
        expect, fault = ADMITTED, ""
        if self._hit("skew_past"):
            reading, expect, fault = _shift(reading, -self.rates.skew), "stale", "skew_past"
        elif self._hit("skew_future"):
            reading, expect, fault = _shift(reading, self.rates.skew), "future", "skew_future"
        message = self._message(site, reading, expect, fault)
        duplicate = self._hit("duplicate")
        if self._hit("reorder"):
            state.held.append(_Held(message, duplicate, 1))
        elif self._hit("late"):
            low, high = self.rates.late_by
            state.held.append(_Held(message, duplicate, int(self.rng.integers(low, high + 1))))
        else:
            out += self._emit([message], state, duplicate)
        return out + self._release(state)

    def drain(self) -> list[Outgoing]:
        """Everything still held back, for a fleet that is stopping."""
        out: list[Outgoing] = []
        for state in self._state:
            for held in state.held:
                out += self._emit([held.message], state, held.duplicate)
            state.held.clear()
        return out

    def expected_gaps(self) -> int:
        """Lost numbers a gateway can find: those below a number that was sent (in the same
        boot: a restart closes the old boot's window)."""
        return sum(st.closed_gaps + sum(1 for s in st.lost if s < st.high_sent)
                   for st in self._state)

    def lost(self) -> int:
        return sum(st.closed_lost + len(st.lost) for st in self._state)

    # ------------------------------------------------------------------ internals

    def _message(self, site: str, reading: Reading, expect: str, fault: str = "") -> Outgoing:
        return Outgoing(site, reading.device, encode_reading(reading), expect, fault, reading.seq)

    def _restart(self, index: int, state: _DeviceFaults) -> list[Outgoing]:
        """Device ``index`` reboots: what it held goes out first, its old boot's losses are
        closed, and it numbers again from 0 under its next boot id."""
        out: list[Outgoing] = []
        for held in state.held:
            out += self._emit([held.message], state, held.duplicate)
        state.held.clear()
        state.closed_gaps += sum(1 for s in state.lost if s < state.high_sent)
        state.closed_lost += len(state.lost)
        state.lost, state.high_sent = [], -1
        state.old, state.last_sent = state.last_sent, None
        self.sim.restart(index)
        return out

    def _emit(self, messages: list[Outgoing], state: _DeviceFaults,
              duplicate: bool = False) -> list[Outgoing]:
        out = []
        for m in messages:
            out.append(m)
            state.high_sent = max(state.high_sent, m.seq)
            state.last_sent = m
            if duplicate:
                out.append(Outgoing(m.site, m.device, m.payload, "duplicate", "duplicate"))
        for m in out:
            self.expected[m.expect] += 1
        return out

    def _release(self, state: _DeviceFaults) -> list[Outgoing]:
        out: list[Outgoing] = []
        keep: list[_Held] = []
        for held in state.held:
            held.release_after -= 1
            if held.release_after <= 0:
                out += self._emit([held.message], state, held.duplicate)
            else:
                keep.append(held)
        state.held = keep
        return out

    def _damage_values(self, reading: Reading, state: _DeviceFaults) -> Reading:
        values = dict(reading.values)
        swing = self.sim.swing
        # a burst's rate is the share of readings it touches: it starts at rate / burst
        if state.noise_left == 0 and self._hit("noise", per=self.rates.burst):
            state.noise_left = self.rates.burst
        if state.noise_left > 0:
            state.noise_left -= 1
            for i, c in enumerate(self._features):
                values[c] = round(values[c] + float(self.rng.normal(0.0, swing[i])), 3)
        if state.stuck_left == 0 and self._hit("stuck", per=self.rates.burst):
            state.stuck_left = self.rates.burst
            state.stuck_channel = str(self.rng.choice(self._features))
            state.stuck_value = values[state.stuck_channel]
        if state.stuck_left > 0:
            state.stuck_left -= 1
            values[state.stuck_channel] = state.stuck_value
        if self._hit("spike"):
            channel = str(self.rng.choice([*self._features, self._target]))
            size = 20.0 * (float(swing[self._features.index(channel)]) if channel in self._features
                           else abs(values[channel]) + 1.0)
            values[channel] = round(values[channel] + float(self.rng.choice([-1, 1])) * size, 3)
        if self._hit("missing"):
            del values[str(self.rng.choice(self._features))]
        return Reading(reading.device, reading.seq, reading.ts, values, reading.boot)

    def _extras(self, site: str, reading: Reading, state: _DeviceFaults) -> list[Outgoing]:
        out = []
        good = encode_reading(reading)
        if self._hit("malformed"):
            cut = int(self.rng.integers(0, len(good) - 1))
            out.append(Outgoing(site, reading.device, good[:cut], "malformed", "malformed"))
        if self._hit("wrong_type"):
            payload, reason = self._wrong_type(reading)
            out.append(Outgoing(site, reading.device, payload, reason, "wrong_type"))
        if self._hit("nan"):
            literal = str(self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]))
            channel = self._features[0]
            payload = good.replace(f'"{channel}":'.encode(), f'"{channel}":{literal},"_":'.encode())
            out.append(Outgoing(site, reading.device, payload, "non_finite", "nan"))
        if self._hit("oversized"):
            obj = reading_to_dict(reading)
            obj["note"] = "x" * (self.max_payload + 1)
            out.append(Outgoing(site, reading.device, orjson.dumps(obj), "too_large",
                                "oversized"))
        if self._hit("unknown_device"):
            stranger = Reading(f"{site}-unknown{reading.seq % 100:02d}", reading.seq,
                               reading.ts, reading.values)
            out.append(Outgoing(site, stranger.device, encode_reading(stranger),
                                "unknown_device", "unknown_device"))
        if self._hit("id_mismatch"):
            out.append(Outgoing(site, reading.device + "x", good, "id_mismatch", "id_mismatch"))
        if state.old is not None and self._hit("old_boot"):  # the previous boot's, again
            out.append(Outgoing(site, reading.device, state.old.payload, "old_boot", "old_boot"))
        for m in out:
            self.expected[m.expect] += 1
        return out

    def _wrong_type(self, reading: Reading) -> tuple[bytes, str]:
        obj = reading_to_dict(reading)
        channel = self._features[0]
        variant = int(self.rng.integers(0, 5))
        if variant == 0:
            obj["seq"] = str(obj["seq"])
        elif variant == 1:
            obj["values"] = {**obj["values"], channel: str(obj["values"][channel])}
        elif variant == 2:
            obj["values"] = {**obj["values"], channel: True}
        elif variant == 3:
            obj["device"] = obj["device"] + " x"
            return orjson.dumps(obj), "bad_id"
        else:
            text = orjson.dumps(obj)
            return text.replace(b'"seq":', b'"seq":0,"seq":', 1), "duplicate_key"
        return orjson.dumps(obj), "schema"


def _shift(reading: Reading, seconds: float) -> Reading:
    return Reading(reading.device, reading.seq, reading.ts + seconds, reading.values,
                   reading.boot)
