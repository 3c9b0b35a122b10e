"""The TOML task configuration and how it becomes the command line's defaults."""

import subprocess
import sys

import pytest

from fleetlearn.config import ConfigError, default_map, load_config, parse_config


def test_sections_reach_the_commands_they_configure(tmp_path):
    path = tmp_path / "fleetlearn.toml"
    path.write_text('[task]\nfeatures = ["a", "hour_sin"]\ntarget = "y"\nkind = "binary"\n'
                    '[learner]\noptimizer = "sgd"\nlr = 0.02\n[cleaning]\nz = 9\n'
                    '[fleet]\ndevices = 7\n[replay]\nfile = "data.csv"\n[aggregator]\nquorum = 3\n')
    defaults = default_map(load_config(path))
    assert defaults["gateway"] == {"features": "a,hour_sin", "target": "y", "kind": "binary",
                                   "optimizer": "sgd", "lr": 0.02, "z": 9}
    assert defaults["devices"]["simulate"] == {"devices": 7}
    assert defaults["devices"]["replay"] == {"file": str(tmp_path / "data.csv")}
    assert defaults["aggregator"] == {"quorum": 3}
    assert defaults["up"]["devices"] == 7 and "z" not in defaults["up"]


def test_the_broker_section_reaches_every_command_that_connects_but_not_up_s_nodes(tmp_path):
    from fleetlearn.deploy.settings import UpSettings

    path = tmp_path / "fleetlearn.toml"
    path.write_text('[broker]\naddress = "mqtts://b:8884"\nusername = "u"\npassword = "pw"\n'
                    'tls_ca = "pki/ca.pem"\n[sync]\nsync_every = 5\n')
    config = load_config(path)
    defaults = default_map(config)
    expected = {"broker": "mqtts://b:8884", "username": "u", "password": "pw",
                "tls_ca": str(tmp_path / "pki" / "ca.pem")}  # relative to the file
    for node in (defaults["gateway"], defaults["aggregator"], defaults["predict"],
                 defaults["devices"]["simulate"], defaults["devices"]["replay"], defaults["up"]):
        assert {k: node[k] for k in expected} == expected
    # up's nodes get the connection from up (argv and environment), never from its file
    assert "broker" not in UpSettings().node_settings(config)


def test_help_never_shows_a_password_the_file_sets(tmp_path):
    (tmp_path / "fleetlearn.toml").write_text('[broker]\npassword = "topsecret"\n')
    for command in (["gateway"], ["up"], ["devices", "simulate"]):
        shown = run(*command, "--help", cwd=tmp_path)
        assert shown.returncode == 0 and "--password" in shown.stdout
        assert "topsecret" not in shown.stdout


@pytest.mark.parametrize("text", ["[nope]\na = 1\n", "[task]\ncolour = 1\n", "task = 1\n",
                                  "[task\n"])
def test_bad_files_are_refused_with_the_reason(text):
    with pytest.raises(ConfigError):
        parse_config(text)


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fleetlearn", *args], capture_output=True,
                          text=True, timeout=30, cwd=cwd)


def test_the_file_sets_defaults_and_a_flag_still_wins(tmp_path):
    (tmp_path / "fleetlearn.toml").write_text('[sync]\nsync_every = 77\n')
    shown = run("gateway", "--help", cwd=tmp_path)  # ./fleetlearn.toml is read by default
    assert shown.returncode == 0 and "default: 77" in shown.stdout
    bad = run("--config", str(tmp_path / "fleetlearn.toml"), "gateway", "--sync-every", "0")
    assert bad.returncode == 2  # the flag, not the file, was checked


def test_a_broken_file_gets_one_line(tmp_path):
    (tmp_path / "bad.toml").write_text("[learner]\nspeed = 3\n")
    done = run("--config", str(tmp_path / "bad.toml"), "gateway", "--help")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "unknown setting [learner] speed" in done.stderr


def test_the_fleet_section_sets_the_batch_layout_of_simulate_and_up():
    defaults = default_map(parse_config('[fleet]\nbatch = 20\nlayout = "rows"\n'))
    assert defaults["devices"]["simulate"] == {"batch": 20, "layout": "rows"}
    assert defaults["up"] == {"batch": 20, "layout": "rows"}


@pytest.mark.parametrize(("module", "loaded"), [
    ("fleetlearn.cli", "[]"), ("learners.aggregator", "[]"), ("devices.fleet", "[]"),
    ("devices.replay", "[]"), ("gateway.predictor", "['numba']")])
def test_only_gateways_load_numba_and_river(module, loaded):
    """Every node is a process of the CLI; numba and river (~170 MiB) are for gateways only,
    but for the predictor's numba: it cleans with the gateway's compiled judge."""
    code = (f"import sys, {module}; "
            "print(sorted(m for m in ('numba', 'river') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == loaded


def test_the_predictor_and_models_sections_reach_their_commands():
    cfg = parse_config('[predictor]\nmax_model_age = 30.0\nstale = "drop"\n'
                       '[models]\nmax_version_jump = 50\n[cleaning]\nmax_seq_jump = 1000\n')
    commands = default_map(cfg)
    assert commands["predict"] == {"max_seq_jump": 1000, "max_version_jump": 50,
                                   "max_model_age": 30.0, "stale": "drop"}
    assert commands["gateway"] == {"max_seq_jump": 1000, "max_version_jump": 50}


def test_up_hands_the_replay_its_time_options_through_the_nodes_file(tmp_path):
    from devices.replay import ReplayConfig
    from fleetlearn.deploy.settings import UpSettings

    replay = ReplayConfig(path=tmp_path / "x.csv", time_col="clock", device_col="dev",
                          date_col="day", time_format="%d/%m/%Y %H:%M", skip_rows=2)
    written = UpSettings(features="t", target="y", replay=replay).node_settings()["replay"]
    assert {k: written[k] for k in ("time_col", "date_col", "time_format", "skip_rows")} == {
        "time_col": "clock", "date_col": "day", "time_format": "%d/%m/%Y %H:%M",
        "skip_rows": 2}
    # and the file's keys are options of `devices replay`, which the replay node runs
    cfg = parse_config('[replay]\ndate_col = "day"\ntime_format = "%H"\nskip_rows = 1\n')
    assert default_map(cfg)["devices"]["replay"] == {"date_col": "day", "time_format": "%H",
                                                     "skip_rows": 1}
