"""Partitions, feature building and reading checks: the gateway's pure core."""

import pytest

from broker.messages import Reading
from broker.topics import Topics
from gateway.features import FeatureBuilder, FeatureSpec
from gateway.partition import Partition
from gateway.validation import Rejected, check_reading


def test_hash_buckets_split_every_device_exactly_once():
    parts = [Partition(bucket=i, buckets=3) for i in range(3)]
    devices = [f"s0-d{i:04d}" for i in range(300)]
    owners = [sum(p.owns("s0", d) for p in parts) for d in devices]
    assert owners == [1] * 300
    assert all(sum(p.owns("s0", d) for d in devices) > 50 for p in parts)


def test_site_partition_subscribes_to_its_sites_only():
    p = Partition.parse("sites:s0,s2")
    assert p.subscriptions(Topics("f")) == ["f/s0/+/reading", "f/s2/+/reading"]
    assert p.owns("s2", "x") and not p.owns("s1", "x")


@pytest.mark.parametrize("text", ["", "sites:", "bucket:3/2", "bucket:a/b", "nope",
                                  "sites:learn"])
def test_bad_partitions_are_refused(text):
    with pytest.raises(ValueError):
        Partition.parse(text)


def test_features_follow_configuration_order():
    build = FeatureBuilder(FeatureSpec(("b", "a"), "y"))
    x, y = build({"a": 1.0, "b": 2.0, "y": 3.0, "extra": 9.0}, 0.0, "d", "s0")
    assert x.tolist() == [2.0, 1.0] and y == 3.0


def test_missing_target_is_a_counted_rejection():
    with pytest.raises(Rejected) as info:
        FeatureBuilder(FeatureSpec(("a",), "y"))({"a": 1.0}, 0.0, "d", "s0")
    assert info.value.reason == "missing_target"


def test_derived_features():
    spec = FeatureSpec(("hour_sin", "hour_cos", "doy_sin", "doy_cos", "site_s1", "lag1_a",
                        "lag1_y"), "y")
    assert spec.channels == ("a", "y")
    build = FeatureBuilder(spec)
    with pytest.raises(Rejected, match="no_history"):
        build({"a": 1.0, "y": 5.0}, 0.0, "d", "s1")
    noon_day_91 = 90 * 86400.0 + 12 * 3600.0
    x, y = build({"a": 2.0, "y": 6.0}, noon_day_91, "d", "s1")
    assert x[:2] == pytest.approx([0.0, -1.0], abs=1e-9)  # noon: the far side of the clock
    assert x[2] == pytest.approx(1.0, abs=2e-3) and x[3] == pytest.approx(0.0, abs=2e-2)
    assert x[4:].tolist() == [1.0, 1.0, 5.0] and y == 6.0
    x, _ = build({"a": 3.0, "y": 7.0}, noon_day_91, "d", "s0")
    assert x[4:].tolist() == [0.0, 2.0, 6.0]  # other site; lags from the reading before


def test_lags_are_per_device():
    build = FeatureBuilder(FeatureSpec(("lag1_a",), "y"))
    for device in ("d1", "d2"):
        with pytest.raises(Rejected):
            build({"a": 1.0 if device == "d1" else 5.0, "y": 0.0}, 0.0, device, "s")
    assert build({"a": 2.0, "y": 0.0}, 0.0, "d1", "s")[0].tolist() == [1.0]


def test_target_cannot_be_a_feature():
    with pytest.raises(ValueError):
        FeatureSpec(("a", "y"), "y")


def test_topic_and_payload_must_name_the_same_device():
    reading = Reading("s0-d1", 1, 0.0, {})
    assert check_reading("s0-d1", reading) is reading
    with pytest.raises(Rejected) as info:
        check_reading("s0-d2", reading)
    assert info.value.reason == "id_mismatch"
