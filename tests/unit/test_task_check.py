"""The task check and the binary-target refusal, without a broker."""

import pytest

from gateway.cleaning import CleaningConfig
from gateway.features import FeatureSpec
from gateway.pipeline import ReadingPipeline
from gateway.task_check import ChannelPresence, task_problem

pytestmark = pytest.mark.timeout(60)


def reading(seq: int, values: dict) -> bytes:
    import orjson
    return orjson.dumps({"device": "d1", "seq": seq, "ts": 100.0 + seq, "values": values})


def test_a_binary_task_refuses_a_target_that_is_not_0_or_1_with_its_own_reason():
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig(binary_target=True))
    out = [pipe.admit("d1", reading(i, {"a": 1.0 + i, "y": y}), now=100.0 + i)
           for i, y in enumerate([0.0, 1.0, 0.5, 2.0, 1.0])]
    reasons = [o[0].reason if hasattr(o[0], "reason") else "ok" for o in out]
    assert reasons == ["ok", "ok", "target_not_binary", "target_not_binary", "ok"]
    assert out[3][0].detail == "y=2, not 0 or 1"
    assert pipe.accounting.rejected["target_not_binary"] == 2
    assert pipe.quality()["d1"]["target_not_binary"] == 2


def test_a_regression_task_learns_any_target():
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig())
    assert type(pipe.admit("d1", reading(0, {"a": 1.0, "y": 2.5}), now=100.0)[0]).__name__ \
        == "Admitted"


def test_a_channel_missing_in_half_the_readings_is_no_problem_one_never_there_is():
    pipe = ReadingPipeline(FeatureSpec(("a", "b"), "y"), CleaningConfig())
    for i in range(200):
        values = {"a": 1.0, "y": 2.0} | ({} if i % 2 else {"b": 3.0})
        pipe.take("d1", reading(i, values), now=100.0 + i)
    pipe.flush()
    seen = pipe.presence
    assert (seen.readings, seen.present) == (200, [200, 100, 200])
    assert task_problem(seen, after=200, not_binary=0, admitted=100) is None
    never = ChannelPresence(("a", "b", "y"), readings=200, present=[200, 0, 0])
    assert "channels 'b', 'y' were in none of the first 200" in task_problem(
        never, after=200, not_binary=0, admitted=0)


def test_some_labels_not_0_or_1_are_refused_but_stop_nothing():
    seen = ChannelPresence(("a", "y"), readings=200, present=[200, 200])
    assert task_problem(seen, after=200, not_binary=20, admitted=180) is None
    assert "neither 0 nor 1 in 200 of the first 200" in task_problem(
        seen, after=200, not_binary=200, admitted=0)
