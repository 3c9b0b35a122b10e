"""Checkpoint faults: a directory that cannot be written, a write that fails, damaged files.
No broker: the aggregator is built but never connected."""

from __future__ import annotations

import logging
import os

import numpy as np
import orjson
import pytest

from broker.address import BrokerAddress
from broker.messages import LinearParams, Scaler, Update
from broker.topics import Topics
from learners.aggregator import Aggregator, AggregatorConfig
from learners.checkpoint import CheckpointError, CheckpointStore
from learners.federation import Federation, FederationConfig

pytestmark = pytest.mark.timeout(30)


def federation_state(version_weight: float) -> dict:
    """A real checkpoint: a federation after one merged model."""
    fed = Federation(FederationConfig(quorum=1))
    params = LinearParams(("a", "b"), np.array([version_weight, 1.0]), 0.0)
    fed.offer(Update("gw-0", 1, 0, 10, "y", params, 0.0, Scaler(10, np.ones(3), np.ones(3))),
              "gw-0", now=0.0)
    assert fed.step(now=0.0, ts=0.0) is not None
    return fed.to_state()


def aggregator(state_dir) -> Aggregator:
    return Aggregator(AggregatorConfig(state_dir=state_dir), Topics("t"), BrokerAddress())


def test_a_state_dir_that_cannot_be_written_is_found_at_start(tmp_path):
    # Arrange: a file where the directory should be (chmod does not stop root)
    blocked = tmp_path / "state"
    blocked.write_text("not a directory")
    # Act / Assert: a clear error, naming the directory and what to do
    with pytest.raises(CheckpointError, match=r"cannot write checkpoints to .*state/aggregator: .*"
                                              r"--state-dir DIR or --no-checkpoints"):
        CheckpointStore(blocked / "aggregator").check()
    with pytest.raises(CheckpointError):
        aggregator(blocked / "aggregator").connect()  # before it ever reaches for the broker


def test_check_removes_the_temp_files_a_crash_left(tmp_path):
    (tmp_path / "ckpt-000000000004.json.tmp").write_bytes(b"{half")
    CheckpointStore(tmp_path).check()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_is_counted_logged_once_and_leaves_no_temp_file(
        tmp_path, monkeypatch, caplog):
    # Arrange: a disk that fills up once the aggregator is running
    agg = aggregator(tmp_path)
    agg.store.check()

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    # Act: three models' checkpoints fail
    with caplog.at_level(logging.DEBUG, logger="learners"):
        for version in (1, 2, 3):
            agg.checkpoint(version, federation_state(1.0))
    # Assert: counted, one ERROR line without a traceback, no temp file, nothing pretends
    assert agg.counters()["checkpoint_errors"] == 3 and agg.checkpointed == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "No space left on device" in errors[0].getMessage()
    assert "ENOSPC" in errors[0].getMessage()
    assert list(tmp_path.iterdir()) == []
    # and once the disk has room again, checkpoints are written again
    monkeypatch.undo()
    agg.checkpoint(4, federation_state(1.0))
    assert agg.checkpointed == 4 and [p.name for p in tmp_path.iterdir()] == [
        "ckpt-000000000004.json"]


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before_with_a_warning(
        tmp_path, caplog):
    store = CheckpointStore(tmp_path)
    store.save(1, federation_state(2.0))
    newest = store.save(2, federation_state(5.0))
    newest.write_bytes(newest.read_bytes()[:40])  # the disk filled up mid-write, say
    agg = aggregator(tmp_path)
    with caplog.at_level(logging.INFO, logger="learners"):
        agg.restore()
    assert agg.checkpointed == 1 and agg.federation.model.params.weights[0] == 2.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert str(newest) in warnings[0].getMessage() and "not JSON" in warnings[0].getMessage()
    resumed = [r for r in caplog.records if "resumed checkpoint v1" in r.getMessage()]
    assert resumed and str(tmp_path / "ckpt-000000000001.json") in resumed[0].getMessage()


@pytest.mark.parametrize(("damage", "why"), [
    (lambda s: s.pop("ledger"), "field 'ledger' missing"),
    (lambda s: s.update(ledger=[1, 2]), "malformed"),
    (lambda s: s["ledger"].update(version="eleven"), "malformed"),
    (lambda s: s.update(format=99), "checkpoint format 99 is not 1"),
])
def test_a_malformed_checkpoint_is_skipped_with_a_warning_and_no_traceback(
        tmp_path, caplog, damage, why):
    store = CheckpointStore(tmp_path)
    store.save(1, federation_state(2.0))
    state = federation_state(5.0)
    damage(state)
    newest = store.save(2, state)
    agg = aggregator(tmp_path)
    with caplog.at_level(logging.WARNING):
        agg.restore()
    assert agg.checkpointed == 1 and agg.federation.version == 1
    assert agg.federation.model.params.weights[0] == 2.0  # nothing of the damaged one
    assert [r.exc_info for r in caplog.records] == [None]
    message = caplog.records[0].getMessage()
    assert str(newest) in message and why in message


def test_nothing_usable_starts_afresh(tmp_path):
    (tmp_path / "ckpt-000000000003.json").write_bytes(orjson.dumps([1, 2]))
    agg = aggregator(tmp_path)
    agg.restore()
    assert agg.federation.version == 0 and agg.restored is None and agg.task_source is None
