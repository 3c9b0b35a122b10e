"""Strategies by name or by ``module:Class``, their parameters, and one defined outside the
package (docs/examples/custom_strategy.py) driving a Federation. No broker."""

import doctest
import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from broker.messages import LinearParams, Scaler, Update
from learners.federation import Federation, FederationConfig
from learners.registry import REQUIRED, build_strategy, resolve_strategy, strategy_parameters
from learners.staleness import Staleness
from learners.strategies import STRATEGIES, FedAsync, FedBuff, MergeRule, Strategy, SyncRounds

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
EXAMPLE = "custom_strategy:WarmupFedAvg"

#: Every option the command line passes (at values that are no strategy's default).
CLI_OPTIONS = {"merge_rule": MergeRule("median"), "round_timeout": 7.0, "max_staleness": 3,
               "alpha": 0.25, "buffer": 2, "server_lr": 0.5, "staleness": Staleness("constant")}


@pytest.fixture
def examples(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def update(learner, seq, base, w, n=10):
    return Update(learner, seq, base, n, "y", LinearParams(("a", "b"), np.array(w, float), 0.0),
                  0.0, Scaler(n, np.zeros(3), np.ones(3)))


# ------------------------------------------------------------------ resolving


@pytest.mark.parametrize(("name", "cls"), [("sync", SyncRounds), ("fedasync", FedAsync),
                                           ("fedbuff", FedBuff)])
def test_a_registered_name_resolves_to_its_class(name, cls):
    assert resolve_strategy(name) is cls
    assert STRATEGIES[name].name == name


def test_module_and_class_resolve_a_strategy_outside_the_package(examples):
    cls = resolve_strategy(EXAMPLE)
    assert cls.__name__ == "WarmupFedAvg" and issubclass(cls, Strategy)
    assert cls.name not in STRATEGIES  # named by its module, not registered


@pytest.mark.parametrize(("spec", "says"), [
    ("fedprox", "use one of sync, fedasync, fedbuff, or package.module:ClassName"),
    ("no_such_module_here:Strategy", "cannot import 'no_such_module_here'"),
    ("custom_strategy:Nope", "has no 'Nope'"),
    ("learners.strategies:MergeRule", "not a subclass of learners.strategies.Strategy"),
    ("learners.strategies:STRATEGIES", "not a subclass of learners.strategies.Strategy"),
    ("learners.strategies:Strategy", "is abstract: define merge, ready"),
    (":SyncRounds", "write it as package.module:ClassName"),
])
def test_a_bad_spec_says_in_one_line_what_to_do(examples, spec, says):
    with pytest.raises(ValueError, match="strategy") as err:
        resolve_strategy(spec)
    assert says in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------ parameters


def test_each_registered_strategy_declares_its_parameters_and_defaults():
    shared = {"merge_rule": MergeRule(), "round_timeout": 2.0}
    decay = {"max_staleness": 8, "staleness": Staleness("polynomial", a=0.5, b=4)}
    assert strategy_parameters(SyncRounds) == shared
    assert strategy_parameters(FedAsync) == {**shared, **decay, "alpha": 0.6}
    assert strategy_parameters(FedBuff) == {**shared, **decay, "buffer": 4, "server_lr": 1.0}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_the_defaults_listed_are_those_a_strategy_is_built_with(name):
    cls = STRATEGIES[name]
    built = cls()
    assert {k: getattr(built, k) for k in strategy_parameters(cls)} == strategy_parameters(cls)


def test_build_passes_only_the_options_a_strategy_takes(examples):
    fedasync = build_strategy("fedasync", CLI_OPTIONS)
    assert (fedasync.alpha, fedasync.max_staleness, fedasync.round_timeout) == (0.25, 3, 7.0)
    assert fedasync.merge_rule.rule == "median" and fedasync.staleness.function == "constant"
    fedbuff = build_strategy("fedbuff", CLI_OPTIONS)
    assert (fedbuff.buffer, fedbuff.server_lr) == (2, 0.5)
    sync = build_strategy("sync", CLI_OPTIONS)
    assert (sync.max_staleness, sync.round_timeout) == (0, 7.0)  # sync: the current version
    custom = build_strategy(EXAMPLE, CLI_OPTIONS)
    assert (custom.warmup, custom.start_lr, custom.round_timeout) == (5, 0.2, 7.0)


def test_none_means_the_strategy_default():
    built = build_strategy("fedbuff", dict.fromkeys(CLI_OPTIONS))
    assert built == FedBuff()


@dataclass
class NeedsK(SyncRounds):
    k: int = 0


class Plain(SyncRounds):
    """Not a dataclass of its own: its parameters are its ``__init__``'s."""

    def __init__(self, k: int, round_timeout: float = 3.0) -> None:
        super().__init__(round_timeout=round_timeout)
        self.k = k


def test_a_plain_class_has_its_init_parameters_and_must_be_given_the_required_ones():
    assert strategy_parameters(Plain) == {"k": REQUIRED, "round_timeout": 3.0}
    with pytest.raises(ValueError, match="needs k"):
        build_strategy("tests.unit.test_strategies:Plain", {"k": None})
    assert build_strategy("tests.unit.test_strategies:Plain", {"k": 4, "alpha": 1.0}).k == 4
    assert build_strategy("tests.unit.test_strategies:NeedsK", {"k": 2}).k == 2


def test_bad_values_are_refused_by_the_strategy(examples):
    with pytest.raises(ValueError, match="alpha"):
        build_strategy("fedasync", {"alpha": 2.0})
    with pytest.raises(ValueError, match="warmup"):
        build_strategy(EXAMPLE, {"warmup": 0})


# ------------------------------------------------------------------ in a federation


def test_the_example_strategy_drives_a_federation_to_merged_models(examples):
    strategy = build_strategy(EXAMPLE, {"merge_rule": MergeRule("mean"), "round_timeout": 60})
    fed = Federation(FederationConfig(strategy, quorum=2))
    fed.offer(update("a", 1, 0, (1.0, 2.0), n=10), "a", 0.0)
    assert fed.step(0.0, 0.0) is None
    fed.offer(update("b", 1, 0, (3.0, 6.0), n=30), "b", 0.0)
    first = fed.step(0.0, 0.0)
    # the first model: what came in, sample-weighted
    assert first.params.weights.tolist() == pytest.approx([2.5, 5.0])
    assert first.notes["strategy"] == "warmup-fedavg" and first.notes["merge"] == "mean"
    fed.offer(update("a", 2, 1, (4.5, 5.0)), "a", 0.0)
    fed.offer(update("b", 2, 1, (4.5, 5.0)), "b", 0.0)
    second = fed.step(0.0, 0.0)
    # merge 1 of a 5-merge warm-up from 0.2: 0.36 of the mean change (+2, 0)
    assert second.params.weights.tolist() == pytest.approx([2.5 + 0.36 * 2.0, 5.0])
    assert fed.offer(update("a", 3, 1, (1.0, 1.0)), "a", 0.0).reason == "stale"


def test_the_example_module_doctest_passes(examples):
    module = importlib.import_module("custom_strategy")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_a_strategy_may_build_the_first_model_its_own_way():
    class FromZero(SyncRounds):
        def first(self, used, kind):
            return np.zeros(len(used[0].params))

    fed = Federation(FederationConfig(FromZero(), quorum=1))
    fed.offer(update("a", 1, 0, (4.0, 4.0)), "a", 0.0)
    assert fed.step(0.0, 0.0).params.weights.tolist() == [0.0, 0.0]
    fed.offer(update("a", 2, 1, (1.0, 3.0)), "a", 0.0)
    assert fed.step(0.0, 0.0).params.weights.tolist() == [1.0, 3.0]  # a step from there


def test_federations_of_one_config_keep_their_own_pending_contributions():
    config = FederationConfig(FedBuff(buffer=2), quorum=2)
    one, two = Federation(config), Federation(config)
    one.offer(update("a", 1, 0, (1.0, 1.0)), "a", 0.0)
    assert list(one.strategy.pending) == ["a"]
    assert not two.strategy.pending and not config.strategy.pending


def test_the_merge_note_is_the_strategy_merge_rule():
    fed = Federation(FederationConfig(SyncRounds(MergeRule("median")), quorum=1))
    fed.offer(update("a", 1, 0, (1.0, 1.0)), "a", 0.0)
    assert fed.step(0.0, 0.0).notes["merge"] == "median"


def test_the_config_refuses_what_is_not_a_strategy():
    with pytest.raises(ValueError, match="must be a Strategy"):
        FederationConfig("sync")
