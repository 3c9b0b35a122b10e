"""A gateway's personal parts survive its restart (learners/personal_checkpoint.py,
gateway/personal_store.py): written whole, resumed only if they are this gateway's and this
task's and well formed, and a restarted gateway serves its sites as before at once."""

import time

import numpy as np
import orjson
import pytest

from broker.address import BrokerAddress
from broker.reading_codec import encode_reading
from broker.topics import Topics
from devices.simulator import FleetSimulator
from fleetlearn.cli import main
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from learners.checkpoint import CheckpointStore
from learners.linear import LinearModel
from learners.optim import AdaGrad
from learners.personal import PersonalParts
from learners.personal_checkpoint import parts_state, restore_parts
from learners.steps import auto_search

pytestmark = pytest.mark.timeout(60)

FEATURES = ("temperature", "humidity", "pressure")


def stream(n: int, seed: int = 4):
    sim = FleetSimulator(8, 2, seed=seed, heterogeneity=0.3)
    rows = [sim.reading(i % 8, float(i)) for i in range(n)]
    X = np.array([[r.values[f] for f in FEATURES] for r in rows])
    y = np.array([r.values["power"] for r in rows])
    keys = [(f"s{r.device[1]}", None) for r in rows]
    return keys, X, y


def make() -> LinearModel:
    return LinearModel(FEATURES)


@pytest.mark.parametrize("auto", [False, True])
def test_restored_parts_go_on_exactly_as_the_parts_they_were_written_from(auto):
    search = (lambda: auto_search(0.3, lambda lr: LinearModel(FEATURES, optimizer=AdaGrad(lr)))
              ) if auto else (lambda: None)
    keys, X, y = stream(6_000)
    base = 0.5 * y  # a global model's predictions, far off
    parts = PersonalParts(make, search())
    parts.learn(keys[:3_000], X[:3_000], y[:3_000], base[:3_000])
    state = orjson.loads(orjson.dumps(parts_state(parts), option=orjson.OPT_SERIALIZE_NUMPY))
    again = PersonalParts(make, search())
    assert restore_parts(again, state) == 2
    assert again.lr == parts.lr and (parts.lr is not None) == auto
    later = slice(3_000, None)
    ours = again.learn(keys[later], X[later], y[later], base[later])
    assert np.array_equal(ours, parts.learn(keys[later], X[later], y[later], base[later]))
    assert again.lr == parts.lr
    for key in {("s0", None), ("s1", None)}:
        assert again.samples(key) == parts.samples(key) == 3_000
    # what a restart without them would serve: the far-off global model, while they relearn
    fresh = PersonalParts(make, search()).learn(keys[later], X[later], y[later], base[later])
    first = slice(0, 200)
    assert np.abs(fresh - y[later])[first].mean() > 10 * np.abs(ours - y[later])[first].mean()


@pytest.mark.parametrize("damage, why", [
    (lambda s: s.update(features=["a", "b", "c"]), "features"),
    (lambda s: s.update(kind="binary"), "binary"),
    (lambda s: s.update(format=2), "format"),
    (lambda s: s["keys"][0]["own"].update(theta=[1.0]), "theta"),
    (lambda s: s["keys"][0]["own"].update(theta=[float("nan")] * 4), "theta"),
    (lambda s: s["keys"][0].update(sums=[0.0]), "mixing state"),
    (lambda s: s["keys"][0].update(key=[1, None]), "key"),
])
def test_a_state_of_another_task_or_malformed_changes_nothing(damage, why):
    keys, X, y = stream(400)
    parts = PersonalParts(make)
    parts.learn(keys, X, y, np.zeros(len(y)))
    state = orjson.loads(orjson.dumps(parts_state(parts), option=orjson.OPT_SERIALIZE_NUMPY))
    damage(state)
    target = PersonalParts(make)
    target.learn(keys[:10], X[:10], y[:10], np.zeros(10))
    before = parts_state(target)
    with pytest.raises(ValueError, match=why):
        restore_parts(target, state)
    assert parts_state(target) == before


def gateway(tmp_path, node="gw-0", target="power", mode="site"):
    from gateway.service import Gateway

    config = GatewayConfig(node, FeatureSpec(FEATURES, target), sync_every=10**9,
                           state_dir=tmp_path / "state", personalize=mode)
    gw = Gateway(config, Topics("p"), BrokerAddress(port=1))  # never connected
    sent: list[tuple[str, bytes]] = []
    gw.control.publish = lambda topic, payload, **kw: sent.append((topic, payload))
    gw.node.publish = lambda *a, **kw: None
    return gw, sent


def feed(gw, n: int, start: int = 0, sim: FleetSimulator | None = None) -> None:
    sim = sim or FleetSimulator(8, 2, seed=4, heterogeneity=0.3)
    now = time.time()
    for i in range(start, start + n):
        device = sim.devices[i % 8]
        gw.handle(Topics("p").reading(device.site, device.device),
                  encode_reading(sim.reading(i % 8, now + i * 1e-3)))
        if i % 500 == 499:
            gw.learn_pending()


def test_a_restarted_gateway_resumes_its_parts_and_another_gateway_does_not(tmp_path, caplog):
    first, _ = gateway(tmp_path)
    feed(first, 4_000)
    first.on_stop()  # learns what is pending, syncs, writes the parts
    learned = {k: first.personal.parts.samples(k) for k in first.personal.parts.models}
    assert sorted(learned) == [("s0", None), ("s1", None)] and min(learned.values()) > 1_000
    assert len(CheckpointStore(tmp_path / "state").files()) == 1

    caplog.set_level("INFO")
    again, sent = gateway(tmp_path)
    assert "resumed 2 personal parts" in caplog.text
    assert {k: again.personal.parts.samples(k) for k in again.personal.parts.models} == learned
    assert again.personal.devices == first.personal.devices
    for key in learned:  # what it serves each site: the part it had
        mine, theirs = again.personal.parts.part(key), first.personal.parts.part(key)
        assert mine[1] == theirs[1] and np.array_equal(mine[0].weights, theirs[0].weights)
    feed(again, 1_000, start=4_000)
    again.publish_update()
    from broker.personal_codec import decode_personal
    published = [decode_personal(p) for t, p in sent if "/personal/" in t]
    assert all(p.n > 4_000 / 2 for p in published) and len(published) == 2
    assert min(p.seq for p in published) > first.personal.seq  # newer than what it had sent

    other, _ = gateway(tmp_path, node="gw-1")  # a state dir shared by mistake
    assert not other.personal.parts.models
    assert "gateway 'gw-0''s, this is 'gw-1'" in caplog.text
    other_task, _ = gateway(tmp_path, target="humidity_next")
    assert not other_task.personal.parts.models
    per_device, _ = gateway(tmp_path, mode="device")  # its keys would never be met
    assert not per_device.personal.parts.models
    assert "parts per site, this gateway's per device" in caplog.text


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    gw, _ = gateway(tmp_path)
    sim = FleetSimulator(8, 2, seed=4, heterogeneity=0.3)
    feed(gw, 1_000, sim=sim)
    gw.publish_update()
    gw.parts_store.save()
    samples = gw.personal.parts.samples(("s0", None))
    feed(gw, 1_000, start=1_000, sim=sim)
    gw.publish_update()
    gw.parts_store.save()
    files = CheckpointStore(tmp_path / "state").files()
    assert len(files) == 2
    files[-1].write_bytes(files[-1].read_bytes()[:100])  # a crash mid-write on another disk
    again, _ = gateway(tmp_path)
    assert again.personal.parts.samples(("s0", None)) == samples
    assert "skipping checkpoint" in caplog.text


def test_a_gateway_that_cannot_write_its_state_dir_stops_at_once_with_one_line(tmp_path,
                                                                             capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as done:
        main(["gateway", "--state-dir", str(blocker / "state"), "--broker", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert done.value.code == 1 and "cannot write checkpoints" in err
    assert "--no-checkpoints" in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_that_cannot_be_written_later_is_logged_once_and_counted(tmp_path,
                                                                             caplog):
    import shutil

    gw, _ = gateway(tmp_path)
    feed(gw, 1_000)
    shutil.rmtree(tmp_path / "state")
    (tmp_path / "state").write_text("")  # the directory gone, a file in its place
    gw.parts_store.save()
    gw.parts_store.save()
    assert gw.counters()["checkpoint_errors"] == 2
    assert caplog.text.count("cannot write checkpoint") == 1
    assert "Traceback" not in caplog.text


def test_while_readings_flow_a_checkpoint_is_written_by_a_thread_after_an_interval(tmp_path):
    gw, _ = gateway(tmp_path)
    feed(gw, 1_000)
    store = gw.parts_store
    store.save_if_due(time.monotonic())  # not in the first interval: the first syncs
    assert not store.writing() and not CheckpointStore(tmp_path / "state").files()
    store.save_if_due(time.monotonic() + store.interval)
    store.wait()
    assert len(CheckpointStore(tmp_path / "state").files()) == 1
    assert store._writer is not None and store._writer.name == "gw-0-parts-checkpoint"
