"""One home per default: every option of a command takes its default from the domain dataclass
that owns it, and every key a config file may hold is a real option of the commands it
configures."""

from typing import Any

import pytest
import typer

from fleetlearn.cli import app
from fleetlearn.commands import (
    aggregator,
    broker,
    common,
    dashboard,
    devices,
    evaluate,
    gateway,
    keys,
    predict,
    up,
)
from fleetlearn.config import COMMANDS, IGNORED, OPTION_NAMES, SECTIONS

ROOT = typer.main.get_command(app)

#: (command path, where its options' defaults live, options that are the command's alone)
HOMES = [
    (("broker",), broker.OWNERS, {"data_dir", "secure", "secure_dir", "device", "host",
                                  "client_certs", "site", "bridge_to",
                                  "bridged_site"}),
    (("gateway",), gateway.OWNERS, {"partition", "features", "target", "allowlist",
                                    "timezones", "state_dir", "checkpoints"}),
    (("aggregator",), aggregator.OWNERS, {"state_dir", "checkpoints", "strategy", "site"}),
    (("predict",), predict.OWNERS, {"partition", "features", "target", "allowlist",
                                    "timezones"}),
    (("devices", "simulate"), devices.SIMULATE_OWNERS, {"faults"}),
    (("devices", "replay"), devices.REPLAY_OWNERS, {"file", "time_col", "device_col",
                                                    "columns"}),
    (("up",), up.OWNERS, {
        # up's own: its source, what it shows and writes
        "duration", "replay", "file", "time_col", "device_col", "columns", "speed", "faults",
        "report", "log_dir", "log_level", "quiet", "secure_dir",
        # node settings: None unless given, so the file's or the node's own default holds
        "sync_every", "sync_interval", "features", "target", "kind", "optimizer", "lr",
        "strategy", "merge", "drift_policy", "personalize"}),
    (("dashboard",), dashboard.OWNERS, set()),
    (("evaluate",), evaluate.OWNERS, {"file", "time_col", "device_col", "columns", "features",
                                      "target", "json", "timezones"}),
]

#: One id per command path: the same in every process (a set's order is not, and pytest-xdist's
#: workers must collect the same tests).
IDS = [" ".join(path) for path, _, _ in HOMES]


def command(path: tuple[str, ...]) -> Any:
    cmd = ROOT
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def options(path: tuple[str, ...]) -> dict[str, Any]:
    return {p.name: p for p in command(path).params if p.name != "help"}


@pytest.mark.parametrize(("path", "owners", "own"), HOMES, ids=IDS)
def test_every_option_has_one_home(path, owners, own):
    params = options(path)
    homeless = set(params) - set(owners) - own - common.CONNECTION_OPTIONS - keys.SIGNING_OPTIONS
    assert not homeless, f"{' '.join(path)}: options with no home: {sorted(homeless)}"
    assert set(owners) <= set(params), "an owner names an option the command does not have"


@pytest.mark.parametrize(("path", "owners", "own"), HOMES, ids=IDS)
def test_every_default_is_its_dataclass_default(path, owners, own):
    params = options(path)
    for name, (owner, field) in owners.items():
        assert params[name].default == common.default(owner, field), (
            f"{' '.join(path)} --{name.replace('_', '-')}: {params[name].default!r} is not "
            f"{owner.__name__}.{field}")


def test_the_aggregators_strategy_defaults_to_the_federations():
    from learners.federation import FederationConfig

    assert options(("aggregator",))["strategy"].default == FederationConfig().strategy.name


def test_node_settings_given_to_up_default_to_none_so_the_nodes_own_defaults_hold():
    params = options(("up",))
    for name in ("sync_every", "sync_interval", "features", "target", "kind", "optimizer",
                 "lr", "strategy", "merge", "drift_policy"):
        assert params[name].default is None, name


def test_connection_defaults_come_from_the_address_and_topics():
    from broker.address import BrokerAddress
    from broker.topics import Topics

    for path in (("gateway",), ("aggregator",), ("predict",), ("devices", "simulate")):
        params = options(path)
        assert params["broker"].default == str(BrokerAddress())
        assert params["prefix"].default == Topics().prefix


@pytest.mark.parametrize(("path", "sections"), list(COMMANDS.items()), ids=str)
def test_every_config_key_is_a_real_option_of_its_command(path, sections):
    params = options(path)
    for section in sections:
        unknown = [key for key in SECTIONS[section] if key not in IGNORED.get(path, ())
                   and OPTION_NAMES.get((section, key), key) not in params]
        assert not unknown, f"[{section}] {unknown} are not options of {' '.join(path)}"


def test_every_section_configures_some_command():
    used = {section for sections in COMMANDS.values() for section in sections}
    assert used | {"learner", "cleaning", "aggregator"} >= set(SECTIONS)
    assert all(any(s in sections for sections in COMMANDS.values()) for s in SECTIONS)


def test_the_gateways_default_task_is_the_simulated_fleets():
    from devices.truth import GroundTruth
    from gateway.config import SIMULATED_TASK

    truth = GroundTruth.from_seed(0)
    assert SIMULATED_TASK.features == truth.features
    assert SIMULATED_TASK.target == truth.target
