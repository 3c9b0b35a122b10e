"""The task and deployment as configuration: a TOML file whose settings become the defaults of
the command-line options (so a flag on the command line always wins).

>>> cfg = parse_config('[task]\\nfeatures = ["a", "b"]\\ntarget = "y"\\n[learner]\\nlr = 0.01\\n')
>>> default_map(cfg)["gateway"]
{'features': 'a,b', 'target': 'y', 'lr': 0.01}
>>> parse_config("[sync]\\ncolour = 1\\n")
Traceback (most recent call last):
...
fleetlearn.config.ConfigError: unknown setting [sync] colour; known: sync_every, sync_interval
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import orjson

DEFAULT_FILE = "fleetlearn.toml"

#: Every setting, by section: what a file may say.
SECTIONS: dict[str, tuple[str, ...]] = {
    "task": ("features", "target", "kind", "timezone", "timezones"),
    "learner": ("optimizer", "lr", "l2", "clip", "class_weight", "threshold", "drift_detector",
                "personalize"),
    "cleaning": ("max_age", "max_skew", "reorder_window", "max_seq_jump", "impute",
                 "impute_max_age", "outliers", "z", "smooth"),
    "gateway": ("check_after", "state_dir", "checkpoints"),  # what only a gateway does
    "sync": ("sync_every", "sync_interval"),
    "models": ("max_version_jump", "max_model_magnitude"),
    "predictor": ("max_model_age", "stale", "qos"),
    "aggregator": ("strategy", "quorum", "round_timeout", "merge", "trim", "clip_norm",
                   "max_staleness", "alpha", "staleness", "staleness_a", "staleness_b",
                   "buffer", "server_lr", "momentum", "max_samples", "drift_policy",
                   "drift_cooldown", "rollback_factor", "rollback_min_samples", "state_dir",
                   "checkpoints", "keep", "learners", "max_rate", "max_seq_jump",
                   "up_interval"),
    "fleet": ("devices", "sites", "rate", "batch", "layout", "qos", "seed", "faults",
              "drift_at", "send_buffer", "positives", "heterogeneity"),
    "replay": ("file", "time_col", "device_col", "date_col", "time_format", "skip_rows", "tz_col",
               "columns", "site", "speed", "qos"),
    "deployment": ("gateways", "prefix", "duration"),
    "signing": ("key", "trust"),  # --signing-key, --trust
    "broker": ("address", "username", "password", "tls_ca", "tls_cert", "tls_key"),
    "metrics": ("port", "host"),  # --metrics-port, --metrics-host: a /metrics endpoint
}

#: A key whose option has another name: ``[broker] address`` is ``--broker``.
OPTION_NAMES = {("broker", "address"): "broker", ("metrics", "port"): "metrics_port",
                ("metrics", "host"): "metrics_host"}

#: Which sections give defaults to which command (a path of subcommand names).
COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("gateway",): ("task", "learner", "cleaning", "gateway", "sync", "models", "signing",
                   "broker", "metrics"),
    ("aggregator",): ("aggregator", "signing", "broker", "metrics"),
    ("devices", "simulate"): ("fleet", "broker"),
    ("devices", "replay"): ("replay", "broker"),
    ("predict",): ("task", "cleaning", "models", "predictor", "signing", "broker", "metrics"),
    ("up",): ("task", "sync", "fleet", "replay", "deployment", "broker", "metrics"),
    ("evaluate",): ("task", "learner", "cleaning", "sync", "replay", "deployment"),
    ("dashboard",): ("deployment", "signing", "broker"),
}

#: Keys of a section that mean nothing to a command (offline there is no wall clock, broker
#: or drift reaction): it takes the rest of the section.
IGNORED: dict[tuple[str, ...], frozenset[str]] = {
    # the gateways' and predictor's: they reach them in the node config `up` writes
    ("up",): frozenset({"timezone", "timezones"}),
    ("evaluate",): frozenset({"drift_detector", "sync_interval", "speed", "qos", "prefix",
                              "duration"}),
    # it watches a deployment: its prefix, broker and trust file, nothing it runs
    ("dashboard",): frozenset({"gateways", "duration", "key"}),
}

#: Options the command line takes as one comma-separated string.
LISTS = frozenset({"features", "columns", "learners"})


class ConfigError(ValueError):
    """A configuration file that cannot be used as it is."""


def parse_config(text: str, source: str = "config") -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    for section, settings in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if not isinstance(settings, dict):
            raise ConfigError(f"[{section}] must be a table of settings")
        for key in settings:
            if key not in SECTIONS[section]:
                raise ConfigError(f"unknown setting [{section}] {key}; known: "
                                  f"{', '.join(SECTIONS[section])}")
    return data


def load_config(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    config = parse_config(text, str(path))
    replay = config.get("replay", {})
    if isinstance(replay.get("file"), str) and not replay["file"].startswith("pkg:"):
        replay["file"] = str((path.parent / replay["file"]).resolve())  # relative to the file
    broker = config.get("broker", {})
    for key in ("tls_ca", "tls_cert", "tls_key"):  # files named relative to the config file
        if isinstance(broker.get(key), str):
            broker[key] = str((path.parent / broker[key]).resolve())
    return config


def _option_value(key: str, value: Any) -> Any:
    if key in LISTS and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if key == "class_weight" and isinstance(value, dict):  # {0 = 1.0, 1 = 19.0}
        return ",".join(f"{k}:{v}" for k, v in value.items())
    if key == "timezones" and isinstance(value, dict):  # [task.timezones] jfk = "..."
        return ",".join(f"{k}={v}" for k, v in value.items())
    return value


def default_map(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """click's ``default_map``: per (sub)command, its options' defaults from the file.

    >>> default_map(parse_config('[broker]\\naddress = "mqtts://b"\\nusername = "u"\\n'))["predict"]
    {'broker': 'mqtts://b', 'username': 'u'}
    """
    out: dict[str, Any] = {}
    for path, sections in COMMANDS.items():
        ignored = IGNORED.get(path, frozenset())
        values = {OPTION_NAMES.get((section, key), key): _option_value(key, value)
                  for section in sections for key, value in config.get(section, {}).items()
                  if key not in ignored}
        if not values:
            continue
        node = out
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = values
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, as [learner] class_weight = {0 = 1, 1 = 9}
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} to a config file")


def dump_config(config: dict[str, dict[str, Any]]) -> str:
    """A config as TOML text that :func:`parse_config` reads back the same.

    >>> cfg = {"task": {"features": ["a", "b"], "target": "y"}, "aggregator": {"quorum": 1},
    ...        "learner": {"class_weight": {"0": 1.0, "1": 19.0}}}
    >>> parse_config(dump_config(cfg)) == cfg
    True
    """
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)
