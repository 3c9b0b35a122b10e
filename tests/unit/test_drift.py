"""DriftMonitor: quiet on stationary errors, quick on a rise, one count a rise, and the same
whichever way the stream is cut into blocks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learners.drift import GROUP, DriftMonitor


def feed(monitor: DriftMonitor, errors: np.ndarray, block: int = 200) -> int:
    return sum(monitor.update_many(errors[i:i + block]) for i in range(0, len(errors), block))


def first_detection(monitor: DriftMonitor, errors: np.ndarray) -> int | None:
    """How many errors it takes (one a call) until a detection counts."""
    for i in range(len(errors)):
        if monitor.update_many(errors[i:i + 1]):
            return i + 1
    return None


@pytest.mark.parametrize("detector", ["adwin", "page-hinkley"])
@pytest.mark.parametrize("seed", range(4))
def test_no_detection_on_a_stationary_stream(detector, seed):
    errors = np.abs(np.random.default_rng(seed).normal(0.0, 0.1, 100_000))
    monitor = DriftMonitor(detector)
    assert feed(monitor, errors) == 0 and monitor.detections == 0
    assert monitor.seen == 100_000


@pytest.mark.parametrize(("detector", "factor", "within"),
                         [("adwin", 4.0, 200), ("adwin", 30.0, 100), ("page-hinkley", 3.0, 500)])
@pytest.mark.parametrize("seed", range(5))
def test_a_rise_after_warmup_is_found_soon_and_counted_once(detector, factor, within, seed):
    rng = np.random.default_rng(100 + seed)
    monitor = DriftMonitor(detector)
    assert feed(monitor, np.abs(rng.normal(0.0, 0.1, 5000))) == 0
    risen = np.abs(rng.normal(0.0, 0.1 * factor, 20_000))
    delay = first_detection(monitor, risen[:within])
    assert delay is not None and (5000 + delay) % GROUP == 0  # found as a group ends
    assert feed(monitor, risen[within:]) == 0  # and not again
    assert monitor.detections == 1


def test_nothing_counts_during_warmup():
    rng = np.random.default_rng(7)
    errors = np.concatenate([np.abs(rng.normal(0.0, 0.1, 2000)),
                             np.abs(rng.normal(0.0, 3.0, 3000))])
    assert feed(DriftMonitor(warmup=3000), errors) == 0
    assert feed(DriftMonitor(warmup=1000), errors) == 1  # what the warmup hid


def river_per_error(detector: str, errors: np.ndarray, rise=3.0, recent=64, warmup=1000) -> int:
    """What DriftMonitor did before it grouped errors: every error into river's detector."""
    from collections import deque

    from river import drift

    adwin = detector == "adwin"
    det = drift.ADWIN() if adwin else drift.PageHinkley(mode="up")
    last: deque[float] = deque(maxlen=recent)
    found = 0
    for seen, error in enumerate(errors.tolist(), 1):
        before = det.estimation if adwin else 0.0
        last.append(error)
        det.update(error)
        if det.drift_detected and seen > warmup and (
                not adwin or sum(last) / len(last) > rise * before):
            found += 1
    return found


@pytest.mark.parametrize("detector", ["adwin", "page-hinkley"])
@pytest.mark.parametrize("seed", range(6))
def test_group_one_is_river_fed_every_error(detector, seed):
    rng = np.random.default_rng(seed)
    scales = rng.choice([0.1, 0.3, 1.0, 3.0], size=8)
    errors = np.concatenate([np.abs(rng.normal(0.0, s, rng.integers(300, 3000)))
                             for s in scales])
    assert feed(DriftMonitor(detector, group=1), errors, 97) == river_per_error(detector, errors)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 700), min_size=1, max_size=40),
       st.sampled_from(["adwin", "page-hinkley"]))
def test_the_same_whichever_way_the_stream_is_cut(sizes, detector):
    rng = np.random.default_rng(11)
    errors = np.abs(np.concatenate([rng.normal(0.0, 0.1, 3000), rng.normal(0.0, 1.0, 3000),
                                    rng.normal(0.0, 0.1, 1000), rng.normal(0.0, 2.0, 2000)]))
    whole = DriftMonitor(detector)
    expected = whole.update_many(errors)
    cut = DriftMonitor(detector)
    found, i = 0, 0
    for size in sizes * (len(errors) // max(1, sum(sizes)) + 1):
        found += cut.update_many(list(errors[i:i + size]) if size % 2 else errors[i:i + size])
        i += size
        if i >= len(errors):
            break
    found += cut.update_many(errors[i:])
    assert expected >= 2  # both rises
    assert (found, cut.detections, cut.seen) == (expected, whole.detections, len(errors))
    if detector == "adwin":
        assert cut.detector.estimation == whole.detector.estimation
