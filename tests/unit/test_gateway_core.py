"""Partitions, feature building and reading checks: the gateway's pure core."""

import pytest

from broker.codec import Reading
from broker.topics import Topics
from gateway.features import FeatureSpec
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
    spec = FeatureSpec(("b", "a"), "y")
    x, y = spec.build({"a": 1.0, "b": 2.0, "y": 3.0, "extra": 9.0})
    assert x.tolist() == [2.0, 1.0] and y == 3.0


def test_missing_target_is_a_counted_rejection():
    with pytest.raises(Rejected) as info:
        FeatureSpec(("a",), "y").build({"a": 1.0})
    assert info.value.reason == "missing_target"


def test_target_cannot_be_a_feature():
    with pytest.raises(ValueError):
        FeatureSpec(("a", "y"), "y")


def test_topic_and_payload_must_name_the_same_device():
    reading = Reading("s0-d1", 1, 0.0, {})
    assert check_reading("s0-d1", reading) is reading
    with pytest.raises(Rejected) as info:
        check_reading("s0-d2", reading)
    assert info.value.reason == "id_mismatch"
