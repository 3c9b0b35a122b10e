"""Which models a gateway or predictor adopts (learners/model_admission.py), without a broker:
issue 13's forged models are refused, a late starter and a node back from a long absence still
catch up, and the task is held."""

import numpy as np
import pytest

from broker.messages import LinearParams, Model, Scaler
from learners.model_admission import SAME, ModelAdmission, ModelBounds, Task, out_of_range

pytestmark = pytest.mark.timeout(10)

TASK = Task(("a", "b"), "y", "regression")


def model(version: int, w: float = 1.0, features=("a", "b"), target="y", kind="regression",
          mean: float = 0.0, m2: float = 1.0, count: int = 10) -> Model:
    params = LinearParams(features, np.full(len(features), w), 0.5)
    scaler = Scaler(count, np.full(len(features) + 1, mean), np.full(len(features) + 1, m2))
    return Model(version, 0.0, 10, ("gw-0",), target, params, scaler, kind)


def admitted(gate: ModelAdmission, m: Model) -> bool:
    if gate.judge(m) is None:
        gate.adopted(m)
        return True
    return False


def test_the_attack_of_the_issue_is_refused_and_the_real_models_go_on():
    gate = ModelAdmission(ModelBounds(), TASK)
    assert admitted(gate, model(40)) and admitted(gate, model(41))
    forged = gate.judge(model(1_000_000, w=1e6))
    assert forged.reason == "model_version_jump" and gate.current == 41
    assert gate.judge(model(2**63 - 1)).reason == "model_version_jump"
    assert admitted(gate, model(42))  # the real aggregator's next
    assert gate.current == 42 and gate.held is None


@pytest.mark.parametrize(("bad", "reason"), [
    (model(2, features=("a", "c")), "model_features"),
    (model(2, features=("a",)), "model_features"),
    (model(2, target="z"), "model_target"),
    (model(2, kind="binary"), "model_kind"),
    (model(2, w=1e10), "model_out_of_range"),
    (model(2, w=-1e10), "model_out_of_range"),
    (model(2, mean=-1e12), "model_out_of_range"),
    (model(2, m2=1e30, count=10), "model_out_of_range"),
    (model(2, count=-1), "model_out_of_range"),
])
def test_another_task_or_absurd_numbers_are_refused(bad, reason):
    gate = ModelAdmission(ModelBounds(), TASK)
    assert admitted(gate, model(1))
    assert gate.judge(bad).reason == reason
    assert gate.current == 1 and admitted(gate, model(2))


def test_old_versions_are_refused_the_current_one_is_ignored():
    gate = ModelAdmission(ModelBounds(), TASK)
    assert admitted(gate, model(4)) and admitted(gate, model(5))
    assert gate.judge(model(5)) is SAME  # the retained model again, after a reconnect
    assert gate.judge(model(4)).reason == "model_old"
    assert gate.judge(model(1)).reason == "model_old"


def test_a_jump_is_held_until_a_model_follows_it():
    """A node back after a long absence adopts the second model it sees."""
    gate = ModelAdmission(ModelBounds(max_version_jump=100), TASK)
    assert admitted(gate, model(1)) and admitted(gate, model(2))
    assert gate.judge(model(50_000)).reason == "model_version_jump"
    assert gate.judge(model(50_000 + 101)).reason == "model_version_jump"  # not a follower
    assert admitted(gate, model(50_000 + 102))  # follows the last held one
    assert gate.judge(model(90_000)).reason == "model_version_jump"
    assert admitted(gate, model(50_000 + 103))  # the real stream goes on; the hold is dropped
    assert gate.judge(model(90_001)).reason == "model_version_jump"


def test_a_first_model_is_taken_provisionally_whatever_its_version():
    """A node that starts late takes the retained model at once (its updates must be on the
    aggregator's version for the rounds to go on); if it was forged, the real next one, lower,
    replaces it; once a model followed, lower ones are old."""
    gate = ModelAdmission(ModelBounds(max_version_jump=100), TASK)
    assert admitted(gate, model(1_000_000, w=1e6)) and gate.provisional
    assert admitted(gate, model(50_000)) and gate.provisional  # the real one, lower
    assert gate.judge(model(900_000)).reason == "model_version_jump"  # no going back up
    assert admitted(gate, model(50_001)) and not gate.provisional  # it followed
    assert gate.judge(model(49_999)).reason == "model_old"
    assert gate.judge(model(1_000_001)).reason == "model_version_jump"
    wrong = ModelAdmission(ModelBounds(), TASK)
    assert wrong.judge(model(7, kind="binary")).reason == "model_kind"  # checked all the same


def test_a_small_first_model_is_taken_at_once_and_zero_means_no_bound():
    assert admitted(ModelAdmission(ModelBounds(max_version_jump=100), TASK), model(100))
    assert admitted(ModelAdmission(ModelBounds(max_version_jump=0), TASK), model(2**62))


def test_a_predictor_takes_the_task_of_its_first_model():
    gate = ModelAdmission(ModelBounds())
    assert admitted(gate, model(1, features=("x",), target="t", kind="binary"))
    assert gate.task == Task(("x",), "t", "binary")
    assert gate.judge(model(2)).reason == "model_features"
    assert admitted(gate, model(2, features=("x",), target="t", kind="binary"))


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        ModelBounds(max_version_jump=-1)
    with pytest.raises(ValueError):
        ModelBounds(max_magnitude=0.0)
    assert out_of_range(model(1, w=1e6), 1e9) is None
    assert out_of_range(model(1, w=1e6), 1e5) is not None
