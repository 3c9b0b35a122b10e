"""``lr = "auto"``: shadows compute what their reference does, the fleet picks the least summed
loss, learners take the announced step, and a diverging step is never the choice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.messages import Update
from learners.federation import Federation, FederationConfig
from learners.linear import LinearModel
from learners.local import LocalLearner
from learners.optim import make_optimizer
from learners.steps import WARMUP, StepSearch, choose, grid
from tests.reference.steps import ReferenceSteps

pytestmark = pytest.mark.timeout(120)


def search_of(steps, d, kind="regression", optimizer="adagrad"):
    return StepSearch(steps, lambda lr: LinearModel(tuple(f"x{j}" for j in range(d)), kind,
                                                    make_optimizer(optimizer, lr)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 3),
       kind=st.sampled_from(["regression", "binary"]),
       optimizer=st.sampled_from(["adagrad", "rmsprop", "sgd"]),
       blocks=st.lists(st.integers(1, 30), min_size=1, max_size=5))
def test_shadows_compute_what_the_reference_does(seed, d, kind, optimizer, blocks):
    rng = np.random.default_rng(seed)
    steps = grid(0.05, 3)
    search = search_of(steps, d, kind, optimizer)
    beta = search.shadows[0].settings.beta
    ref = ReferenceSteps.blank(steps, d, kind, optimizer, beta)
    for n in blocks:
        X = rng.normal(rng.normal(0, 10, d), 10.0 ** rng.uniform(-1, 2, d), (n, d))
        Y = ((rng.random(n) < 0.5).astype(float) if kind == "binary"
             else X @ rng.normal(0, 2, d) + rng.normal(0, 1, n))
        search.learn(X, Y)
        ref.learn(X, Y)
    assert search.n == ref.n
    np.testing.assert_allclose(search.loss, ref.loss, rtol=1e-9, atol=1e-9)
    for warmup in (0, WARMUP):
        expected = ref.best(warmup)
        got = search.best() if warmup == WARMUP else search.steps[int(np.argmin(search.loss))]
        assert got == expected


def test_a_step_that_diverges_is_never_chosen_and_its_loss_still_travels():
    rng = np.random.default_rng(0)
    search = search_of((1e-3, 1e-2, 1e3), 2, optimizer="sgd")
    X = rng.normal(0, 1, (WARMUP + 200, 2))
    search.learn(X, X @ np.array([3.0, -1.0]) + 5.0)
    assert not search.loss[2] < 1000 * min(search.loss[:2])  # it ran away (or overflowed)
    assert search.best() != 1e3
    report = search.report()
    assert all(np.isfinite(v) for v in report.values())
    assert choose({"gw-0": report})[0] != 2
    search.loss[2] = np.inf  # overflowed: travels as the largest finite number
    assert search.report()["step_loss_2"] == 1e300 and search.best() != 1e3


def update(who: str, seq: int, losses: list[float], n: float) -> Update:
    from broker.messages import LinearParams, Scaler

    metrics = {f"step_loss_{i}": v for i, v in enumerate(losses)} | {"step_n": n}
    return Update(who, seq, 0, 10, "y", LinearParams(("x",), np.array([1.0]), 0.0), 0.0,
                  Scaler(10, np.zeros(2), np.ones(2)), metrics=metrics)


def test_the_fleet_announces_the_step_of_the_least_summed_loss_and_learners_take_it():
    fed = Federation(FederationConfig(quorum=2))
    # alone, gw-0 would pick step 0 and gw-1 step 2; summed, step 1 is the least
    assert fed.offer(update("gw-0", 1, [1.0, 2.0, 9.0], 600.0), "gw-0", now=0.0) is None
    assert fed.offer(update("gw-1", 1, [9.0, 2.0, 1.0], 600.0), "gw-1", now=0.0) is None
    model = fed.step(now=0.0, ts=0.0)
    assert model.notes["step"] == {"index": 1, "loss": [10.0, 4.0, 10.0]}

    local = LocalLearner(LinearModel(("x",)), search_of(grid(0.3, 3), 1))
    assert local.learner.lr == pytest.approx(grid(0.3, 3)[0])  # below the middle until then
    local.adopt(model)
    assert local.learner.lr == pytest.approx(grid(0.3, 3)[1]) and local.fleet_step
    odd = replace(model, version=2, notes=model.notes | {"step": {"index": 7, "loss": []}})
    local.adopt(odd)  # a step not in our grid: counted, ignored
    assert local.step_refused == 1 and local.learner.lr == pytest.approx(grid(0.3, 3)[1])


def test_no_step_is_announced_before_the_fleet_has_warmup_samples_of_loss():
    fed = Federation(FederationConfig(quorum=1))
    assert fed.offer(update("gw-0", 1, [1.0, 2.0], WARMUP - 1.0), "gw-0", now=0.0) is None
    assert "step" not in fed.step(now=0.0, ts=0.0).notes


def test_a_new_step_reaches_the_per_reading_kernel_too():
    a, b = LinearModel(("x",)), LinearModel(("x",), optimizer=make_optimizer("adagrad", 0.9))
    a.set_lr(0.9)
    for i in range(20):
        x = np.array([float(i % 7)])
        assert a.predict_then_learn_one(x, 2.0 * x[0]) == b.predict_then_learn_one(x, 2.0 * x[0])


def test_a_learner_starts_below_the_default_step_and_follows_its_shadows_until_the_fleet_says():
    rng = np.random.default_rng(1)
    local = LocalLearner(LinearModel(("x",)), search_of(grid(0.3), 1))
    assert local.learner.lr == pytest.approx(grid(0.3)[1])  # from the very first sample
    X = rng.normal(0, 1, (WARMUP + 1, 1))
    local.learn(X, 2.0 * X[:, 0])
    assert local.learner.lr == local.steps.best()
    assert local.learner.lr == local.steps.steps[int(np.argmin(local.steps.loss))]


def test_at_an_adoption_every_shadow_carries_on_from_the_learners_model():
    from broker.messages import LinearParams, Model, Scaler

    rng = np.random.default_rng(2)
    local = LocalLearner(LinearModel(("x",)), search_of(grid(0.3, 3), 1))
    X = rng.normal(5, 2, (300, 1))
    local.learn(X, 3.0 * X[:, 0])
    losses = local.steps.loss.copy()
    fleet = Model(1, 0.0, 900, ("gw-0", "gw-1"), "y", LinearParams(("x",), np.array([-1.0]), 4.0),
                  Scaler(900, np.array([0.0, 1.0]), np.array([899.0, 899.0])))
    local.adopt(fleet, replace=True)
    for shadow in local.steps.shadows:  # as the learner would go on, at the shadow's step
        for mine, learners in zip(shadow.state, local.learner.state, strict=True):
            np.testing.assert_array_equal(mine, learners)
    np.testing.assert_array_equal(local.steps.loss, losses)  # the sums go on
    x = rng.normal(5, 2, (1, 1))
    first = [s.predict_many(x)[0] for s in local.steps.shadows]
    assert first == pytest.approx([local.learner.predict_many(x)[0]] * 3)


def test_personal_parts_learn_at_the_step_their_own_alone_shadows_find_best():
    from learners.personal import SLOW, PersonalParts

    rng = np.random.default_rng(3)
    search = search_of(grid(0.3), 1)
    parts = PersonalParts(lambda: LinearModel(("x",)), search)
    assert parts.lr == search.start()
    X = rng.normal(0, 1, (WARMUP + 200, 1))
    keys = ["s0"] * len(X)
    parts.learn(keys[:100], X[:100], X[:100, 0], np.zeros(100))
    own, slow = parts.models["s0"], parts.slow["s0"]
    assert (own.lr, slow.lr) == (search.start(), search.start() * SLOW)
    parts.learn(keys[100:], X[100:], 4.0 * X[100:, 0], np.zeros(len(X) - 100))
    assert search.n == len(X) - 1 and parts.lr == search.best() != search.start()
    assert (own.lr, slow.lr) == (search.best(), search.best() * SLOW)


def test_when_the_fleet_resets_for_a_drift_the_shadows_forget_their_steps_with_the_learner():
    from broker.messages import LinearParams, Model, Scaler

    rng = np.random.default_rng(4)
    local = LocalLearner(LinearModel(("x",)), search_of(grid(0.3, 3), 1))
    X = rng.normal(0, 1, (300, 1))
    local.learn(X, 3.0 * X[:, 0])
    assert all(s.state.memory.any() for s in local.steps.shadows)
    reset = Model(1, 0.0, 900, ("gw-0",), "y", LinearParams(("x",), np.array([1.0]), 0.0),
                  Scaler(900, np.array([0.0, 1.0]), np.array([899.0, 899.0])),
                  notes={"drift": {"policy": "reset", "learners": ["gw-0"]}})
    local.adopt(reset, replace=True)
    assert not local.learner.state.memory.any()  # steps as large as at the start
    assert not any(s.state.memory.any() for s in local.steps.shadows)
