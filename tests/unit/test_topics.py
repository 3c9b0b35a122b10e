"""Topic builders and parsers."""

import pytest

from broker.topics import TopicError, Topics, check_id, check_site


def test_every_topic_is_under_the_prefix():
    t = Topics("plant/a")
    built = [t.reading("s1", "d1"), t.device_status("s1", "d1"), t.prediction("s1", "d1"),
             t.update("gw-0"), t.model, t.node_status("agg"), t.metrics("gw-0"),
             t.deadletter("gw-0")]
    assert all(topic.startswith("plant/a/") for topic in built)
    assert len(set(built)) == len(built)


def test_parse_device_topic_round_trips():
    t = Topics("fleet")
    assert t.parse_device_topic(t.reading("s1", "s1-d0003")) == ("s1", "s1-d0003", "reading")
    assert t.parse_device_topic(t.prediction("s2", "x")) == ("s2", "x", "prediction")


@pytest.mark.parametrize("topic", ["other/s1/d/reading", "fleet/s1/reading",
                                   "fleet/s1/d/other", "fleet/learn/update/reading",
                                   "fleet/s1/d/e/reading"])
def test_parse_refuses_what_is_not_a_device_topic(topic):
    with pytest.raises(TopicError):
        Topics("fleet").parse_device_topic(topic)


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x" * 65, "sp ace", "-lead"])
def test_ids_stay_one_topic_level(bad):
    with pytest.raises(TopicError):
        check_id(bad)


def test_reserved_words_are_not_sites():
    with pytest.raises(TopicError):
        check_site("learn")
    assert check_site("s0") == "s0"


@pytest.mark.parametrize("prefix", ["", "a//b", "a/+", "#"])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(TopicError):
        Topics(prefix)


def test_filters_match_their_topics():
    t = Topics("p")
    assert t.readings_filter() == "p/+/+/reading"
    assert t.readings_filter("s1") == "p/s1/+/reading"
    assert t.updates_filter == "p/learn/update/+"
