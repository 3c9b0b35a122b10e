"""The compiled block pipeline judges every reading exactly as the pure-Python reference does.

``tests/reference`` holds the pipeline as it was before the kernel (one reading at a time,
dicts and sorted lists). Random fleets send streams with every kind of fault (duplicates,
reordering, jumps past the window and past the largest jump, replays, restarts with a new boot
id, readings of an old boot, stale and future clocks, missing channels, outliers, undecodable
payloads, other devices' ids) in all three layouts, cut into blocks at random; each reading
must get the same outcome, the same features and target, and the books (counts, gaps,
restarts, per-device quality) must agree.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.messages import Reading
from broker.reading_codec import encode_reading, encode_reading_columns, encode_readings
from gateway.cleaning import ChannelPolicy
from gateway.features import FeatureSpec
from gateway.local_time import LocalTime
from gateway.pipeline import Admitted, CleaningConfig, ReadingPipeline
from gateway.validation import Rejected
from tests.reference.pipeline import ReadingPipeline as ReferencePipeline

SPEC = FeatureSpec(("a", "b", "lag1_y", "hour_sin", "doy_cos", "site_s1"), "y")
#: local time by zone, site and device, and a device one-hot
LOCAL_SPEC = FeatureSpec(("a", "hour_sin", "hour_cos", "doy_sin", "site_s1", "device_d1"), "y",
                         LocalTime("America/New_York", {"s1": "+05:30", "d2": "Europe/Paris"}))
NOW = 1_700_000_000.0


def policies():
    return st.builds(
        ChannelPolicy,
        impute=st.sampled_from(["last", "mean", "none"]),
        max_age=st.sampled_from([5.0, 300.0]),
        outliers=st.sampled_from(["median", "clip", "reject", "none"]),
        z=st.sampled_from([1.5, 3.0, 5.0]),
        window=st.integers(3, 40),
        min_history=st.integers(1, 3),
        smooth=st.sampled_from([None, 0.5]),
    )


def configs():
    return st.builds(
        CleaningConfig,
        allowlist=st.sampled_from([None, frozenset({"d0", "d1", "d2"})]),
        max_age=st.sampled_from([30.0, 300.0]),
        max_skew=st.sampled_from([5.0, 60.0]),
        reorder_window=st.integers(1, 8),
        max_seq_jump=st.sampled_from([8, 15, 1_000_000]),
        policy=policies(),
        channel_policies=st.dictionaries(st.sampled_from(["a", "b", "y"]), policies(),
                                         max_size=2),
    )


def boot_of(rng: np.random.Generator, boots: dict[str, int], next_seq: dict[str, int],
            device: str, fault: float) -> int:
    """The boot id of a message: the device's, a new one (it restarts its numbers) or an old
    one (a replay of an earlier boot, or a forged smaller id)."""
    r = rng.random()
    if r < fault:  # a restart, numbering again from about 0
        boots[device] += int(rng.choice([1, 2, 2**40]))
        next_seq[device] = int(rng.integers(-1, 3))
    elif r < 1.5 * fault and boots[device] > 0:
        return int(rng.integers(0, boots[device]))
    return boots[device]


def stream(rng: np.random.Generator, messages: int, fault: float):
    """(topic device, site, payload, now) of a few devices, every fault at rate ``fault``."""
    next_seq = {f"d{i}": int(rng.integers(0, 5)) for i in range(3)}
    boots = {f"d{i}": int(rng.choice([0, 0, 7])) for i in range(3)}
    out = []
    for m in range(messages):
        device = f"d{rng.integers(0, 3)}"
        site = ["s0", "s1"][int(rng.integers(0, 2))]
        now = NOW + m
        size = int(rng.choice([1, 1, 2, 5]))
        layout = rng.random()
        boot = boot_of(rng, boots, next_seq, device, fault)
        readings = []
        for _ in range(size):
            r = rng.random()
            if r < fault:  # a repeat, a reorder or a replay
                seq = max(0, next_seq[device] - int(rng.integers(1, 12)))
            elif r < 2 * fault:  # a jump, sometimes past the window or the largest jump
                next_seq[device] += int(rng.integers(2, 20))
                seq = next_seq[device]
            elif r < 2.3 * fault:  # a forged huge number (the real stream goes on below it)
                seq = int(rng.choice([2**62, 2**63 - 1, next_seq[device] + 10**6 + 1]))
            elif r < 2.5 * fault:  # the device's numbers really jump beyond the largest jump
                next_seq[device] += int(rng.choice([16, 30, 10**6 + 2]))
                seq = next_seq[device]
            else:
                next_seq[device] += 1
                seq = next_seq[device]
            ts = now + float(rng.choice([0.0, -1.0, -400.0, 100.0]) if rng.random() < fault
                             else -rng.random())
            values = {}
            for ch, level in (("a", 20.0), ("b", -3.0), ("y", 7.0)):
                if rng.random() < fault:
                    continue  # missing
                v = level + rng.normal()
                if rng.random() < fault:
                    v *= 50.0  # a spike
                values[ch] = int(v) if rng.random() < 0.1 else round(float(v), 3)
            if layout >= 0.5 and rng.random() < fault:  # rows: each reading has its own boot
                boot = boot_of(rng, boots, next_seq, device, fault)
            readings.append(Reading(device, seq, ts, values, boot))
        if size == 1:
            payload = encode_reading(readings[0])
        elif layout < 0.5:
            payload = encode_reading_columns(readings)
        else:
            payload = encode_readings(readings)
        if rng.random() < fault / 2:
            payload = payload[: int(rng.integers(1, len(payload)))]  # cut short
        topic_device = device if rng.random() > fault / 2 else "d9"  # another id, or unknown
        out.append((topic_device, site, payload, now))
    return out


def same_outcome(mine, theirs):
    if isinstance(theirs, Rejected):
        assert isinstance(mine, Rejected), (mine, theirs.reason)
        assert mine.reason == theirs.reason
    else:
        assert isinstance(mine, Admitted), (mine.reason, "admitted")
        np.testing.assert_allclose(mine.x, theirs.x, rtol=1e-12, atol=1e-12)
        assert mine.y == theirs.y or (math.isnan(mine.y) and math.isnan(theirs.y))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), seed=st.integers(0, 2**32 - 1), fault=st.sampled_from([0.0, 0.05, 0.2]),
       block=st.integers(1, 12), spec=st.sampled_from([SPEC, LOCAL_SPEC]))
def test_the_kernel_judges_as_the_reference(config, seed, fault, block, spec):
    rng = np.random.default_rng(seed)
    mine, ref = ReadingPipeline(spec, config), ReferencePipeline(spec, config)
    messages = stream(rng, 200, fault)
    expected, got = [], []
    for start in range(0, len(messages), block):  # the kernel sees blocks of messages
        for device, site, payload, now in messages[start:start + block]:
            expected += ref.admit(device, payload, now, site)
            mine.take(device, payload, now, site)
        got += mine.flush(outcomes=True).outcomes
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        same_outcome(a, b)
    assert mine.accounting.admitted == ref.accounting.admitted
    assert mine.accounting.rejected == ref.accounting.rejected
    assert mine.gaps == ref.sequences.gaps and mine.devices == ref.sequences.devices
    assert mine.close() == ref.close() and mine.gaps == ref.sequences.gaps
    assert mine.quality() == ref.quality()


def test_a_jump_of_millions_is_counted_not_listed():
    config = CleaningConfig(reorder_window=4, max_seq_jump=10**8)
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), config)
    reading = b'{"device":"d","seq":%d,"ts":1.0,"values":{"a":1.0,"y":2.0}}'
    pipe.admit("d", reading % 0, now=1.0)
    pipe.admit("d", reading % 10_000_000, now=1.0)
    assert pipe.gaps == 10_000_000 - 4
    assert [o.reason for o in pipe.admit("d", reading % 9_999_000, now=1.0)] == ["late"]
    assert [o.reason for o in pipe.admit("d", reading % 5, now=1.0)] == ["replay"]


@pytest.mark.timeout(60)
def test_one_huge_number_neither_mutes_its_device_nor_counts_gaps():
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig(reorder_window=4))
    reading = b'{"device":"d","seq":%d,"ts":1.0,"values":{"a":1.0,"y":2.0}}'
    for seq in range(3):
        pipe.admit("d", reading % seq, now=1.0)
    forged = pipe.admit("d", reading % 2**62, now=1.0)
    assert [o.reason for o in forged] == ["seq_jump"] and "2" in forged[0].detail
    later = [o for seq in range(3, 10) for o in pipe.admit("d", reading % seq, now=1.0)]
    assert all(isinstance(o, Admitted) for o in later)  # the device is not muted
    assert pipe.gaps == 0 and pipe.close() == 0
    assert pipe.accounting.rejected == {"seq_jump": 1}
    assert pipe.quality()["d"]["seq_jump"] == 1
    # the bound is the device's: a jump just within it moves the mark, one past it does not
    assert [o.reason for o in pipe.admit("d", reading % (9 + 1_000_001), now=1.0)] == ["seq_jump"]
    assert isinstance(pipe.admit("d", reading % (9 + 1_000_000), now=1.0)[0], Admitted)
    assert pipe.restarts == 0


@pytest.mark.timeout(60)
def test_a_jump_that_is_followed_is_taken_as_a_restart():
    """A device that really lost more than the largest jump goes on from its new numbers."""
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig(reorder_window=4,
                                                                    max_seq_jump=100))
    reading = b'{"device":"d","seq":%d,"ts":1.0,"values":{"a":1.0,"y":2.0}}'
    reasons = [o.reason if isinstance(o, Rejected) else "ok" for seq in (0, 1, 5000, 5002, 5003)
               for o in pipe.admit("d", reading % seq, now=1.0)]
    assert reasons == ["ok", "ok", "seq_jump", "ok", "ok"]
    assert pipe.restarts == 1 and pipe.gaps == 0
    assert pipe.close() == 0  # the marks start at 5002: 5001 is no gap


def test_a_failing_block_is_still_accounted_for(monkeypatch):
    from gateway import pipeline

    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig())
    pipe.take("d", b'{"device":"d","seq":1,"ts":1.0,"values":{"a":1.0,"y":2.0}}', now=1.0)
    pipe.take("d", b"not json", now=1.0)

    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "judge_rows", broken)
    block = pipe.flush()
    assert [why.reason for _, why in block.rejected] == ["internal_error", "malformed"]
    assert pipe.accounting.rejected == {"internal_error": 1, "malformed": 1}


@pytest.mark.parametrize("devices", [1, 300])
def test_the_device_table_grows_without_losing_state(devices):
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig())
    reading = b'{"device":"d%d","seq":%d,"ts":1.0,"values":{"a":%d.0,"y":2.0}}'
    for seq in range(3):
        for d in range(devices):
            pipe.take(f"d{d}", reading % (d, seq, d), now=1.0)
        pipe.flush()
    assert pipe.accounting.admitted == 3 * devices and pipe.devices == devices
    table = pipe.devices_table
    assert table.c_last[:devices, 0].tolist() == [float(d) for d in range(devices)]
    assert (table.c_count[:devices] == 3).all()


def test_the_random_streams_restart_and_replay_old_boots():
    """The streams above do exercise the boot rules, in every layout."""
    config = CleaningConfig(reorder_window=4)
    ref = ReferencePipeline(SPEC, config)
    for device, site, payload, now in stream(np.random.default_rng(3), 400, 0.2):
        ref.admit(device, payload, now, site)
    assert ref.accounting.rejected["old_boot"] > 0 and ref.sequences.restarts > 0
    assert ref.accounting.rejected["replay"] > 0 and ref.accounting.rejected["duplicate"] > 0


def test_a_restart_reading_by_reading():
    """A device restarts from 0 with a new boot id: every new reading is learned at once, the
    old boot's missing numbers are gaps, a replay of the old boot is old_boot, and a replay of
    the new boot's numbers is still a duplicate or a replay."""
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig(reorder_window=4))
    reading = b'{"device":"d","boot":%d,"seq":%d,"ts":1.0,"values":{"a":1.0,"y":2.0}}'

    def send(boot: int, seq: int) -> str:
        [outcome] = pipe.admit("d", reading % (boot, seq), now=1.0)
        return "admitted" if isinstance(outcome, Admitted) else outcome.reason

    assert [send(5, s) for s in (0, 1, 2, 3, 4, 6, 8, 9)] == ["admitted"] * 8
    assert pipe.gaps == 1  # 5 left the window unseen; 7 is still inside it
    assert [send(6, s) for s in (0, 1, 2)] == ["admitted"] * 3  # restarted: no replay
    assert pipe.gaps == 2 and pipe.restarts == 1  # 7 closed with the old boot's window
    assert [send(5, 10), send(5, 5), send(6, 1), send(0, 3)] == ["old_boot"] * 2 + [
        "duplicate", "old_boot"]
    assert [send(6, s) for s in (3, 9, 4, 2)] == ["admitted", "admitted", "late", "replay"]
    assert pipe.gaps == 2 + 1  # 4 and 5 of boot 6 left the window unseen; 4 came late
    # a plain reading (no boot: boot 0) is an old boot now
    [old] = pipe.admit("d", b'{"device":"d","seq":99,"ts":1.0,"values":{"a":1.0}}', now=1.0)
    assert old.reason == "old_boot"
    assert pipe.accounting.rejected == {"old_boot": 4, "duplicate": 1, "late": 1, "replay": 1}
    assert pipe.quality()["d"]["restarts"] == 1 and pipe.close() == 3  # 6, 7, 8 of boot 6
