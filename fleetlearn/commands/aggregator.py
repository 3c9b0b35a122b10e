"""`fleetlearn aggregator`: options -> :class:`~learners.aggregator.AggregatorConfig` (with its
:class:`~learners.federation.FederationConfig`) -> a served aggregator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from broker.bridge import site_aggregator_id
from broker.topics import check_id
from fleetlearn.commands.common import (
    DEFAULT_BROKER,
    DEFAULT_PREFIX,
    EXPORTER_OWNERS,
    BrokerOpt,
    GiveUpOpt,
    MetricsHostOpt,
    MetricsOpt,
    MetricsPortOpt,
    PasswordOpt,
    PrefixOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    UsageProblem,
    UserOpt,
    address,
    default,
    default_state_dir,
    serve,
    topics,
)
from fleetlearn.commands.keys import SigningKeyOpt, TrustOpt, keyring
from fleetlearn.metrics.settings import ExporterConfig
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.registry import build_strategy
from learners.site_aggregator import SiteAggregator, SiteConfig
from learners.staleness import Staleness
from learners.strategies import FedAsync, FedBuff, MergeRule, Strategy

A, F, M, S = AggregatorConfig, FederationConfig, MergeRule, Staleness
#: The strategy the aggregator runs unless told (a registry name).
DEFAULT_STRATEGY = default(F, "strategy").name

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {
    **EXPORTER_OWNERS,
    "id": (A, "node_id"), "keep": (A, "keep"), "metrics_interval": (A, "metrics_interval"),
    "up_interval": (SiteConfig, "up_interval"),
    "quorum": (F, "quorum"), "round_timeout": (Strategy, "round_timeout"),
    "max_staleness": (FedAsync, "max_staleness"), "alpha": (FedAsync, "alpha"),
    "buffer": (FedBuff, "buffer"), "server_lr": (FedBuff, "server_lr"),
    "momentum": (F, "momentum"),
    "max_samples": (F, "max_samples"), "drift_policy": (F, "drift_policy"),
    "drift_cooldown": (F, "drift_cooldown"), "rollback_factor": (F, "rollback_factor"),
    "rollback_min_samples": (F, "rollback_min_samples"), "learners": (F, "learners"),
    "max_rate": (F, "max_rate"), "max_seq_jump": (F, "max_seq_jump"),
    "merge": (M, "rule"), "trim": (M, "trim"), "clip_norm": (M, "clip_norm"),
    "staleness": (S, "function"), "staleness_a": (S, "a"), "staleness_b": (S, "b"),
}


def aggregator(
    strategy: Annotated[str, typer.Option(help="'sync' (FedAvg rounds), 'fedasync' (mix each "
                                          "update in), 'fedbuff' (merge every --buffer), or "
                                          "your own as package.module:ClassName.")
                        ] = DEFAULT_STRATEGY,
    quorum: Annotated[int, typer.Option(min=0, help="Updates that close a sync round, less the "
                                        "learners whose status is offline (0: every live "
                                        "learner).")] = default(F, "quorum"),
    round_timeout: Annotated[float, typer.Option(min=0.01, help="Seconds a round (or a "
                                                 "buffer) waits for its quorum.")
                             ] = default(Strategy, "round_timeout"),
    merge: Annotated[str, typer.Option(help="'mean' (sample-weighted), or robust: 'median' "
                                       "(coordinate-wise) or 'trimmed'.")] = default(M, "rule"),
    trim: Annotated[float, typer.Option(min=0.0, max=0.49, help="Share trimmed at each end "
                                        "by --merge trimmed.")] = default(M, "trim"),
    clip_norm: Annotated[float | None, typer.Option(min=1e-9, help="Clip each learner's change "
                                                    "to this norm (standardised units).")
                         ] = default(M, "clip_norm"),
    max_staleness: Annotated[int, typer.Option(min=0, help="Async: versions an update may be "
                                               "behind.")] = default(FedAsync, "max_staleness"),
    alpha: Annotated[float, typer.Option(min=1e-6, max=1.0, help="fedasync: mixing weight.")
                     ] = default(FedAsync, "alpha"),
    staleness: Annotated[str, typer.Option(help="Async staleness weight: 'constant', "
                                           "'polynomial' or 'hinge'.")] = default(S, "function"),
    staleness_a: Annotated[float, typer.Option(min=0.0, help="Its a.")] = default(S, "a"),
    staleness_b: Annotated[int, typer.Option(min=0, help="Hinge: versions with full weight.")
                           ] = default(S, "b"),
    buffer: Annotated[int, typer.Option(min=1, help="fedbuff: updates per merge.")
                      ] = default(FedBuff, "buffer"),
    server_lr: Annotated[float, typer.Option(min=1e-9, help="fedbuff: server step.")
                         ] = default(FedBuff, "server_lr"),
    momentum: Annotated[float, typer.Option(min=0.0, max=0.99, help="Server momentum "
                                            "(0: none).")] = default(F, "momentum"),
    max_samples: Annotated[int, typer.Option(min=1, help="Largest n an update may claim.")
                           ] = default(F, "max_samples"),
    learners: Annotated[str | None, typer.Option(help="Comma-separated learner ids accepted "
                                                 "(a roster; others are refused as "
                                                 "unknown_learner). Default: any id.")
                        ] = default(F, "learners"),
    max_rate: Annotated[float, typer.Option(min=0.0, help="Samples a second one learner can "
                                            "see: an update's n may grow by at most this "
                                            "times the seconds since its last accepted one "
                                            "(0: no bound).")] = default(F, "max_rate"),
    max_seq_jump: Annotated[int, typer.Option(min=1, help="How far an update's seq may run "
                                              "ahead of the learner's last (beyond: refused "
                                              "as seq_jump).")] = default(F, "max_seq_jump"),
    drift_policy: Annotated[str, typer.Option(help="On a learner's drift flag: 'none', "
                                              "'rescale' (standardise by the new data) or "
                                              "'reset' (forget the old weights too).")
                            ] = default(F, "drift_policy"),
    drift_cooldown: Annotated[int, typer.Option(min=0, help="Versions after a drift reaction "
                                                "that ignore further flags.")
                              ] = default(F, "drift_cooldown"),
    rollback_factor: Annotated[float, typer.Option(min=0.0, help="Roll back a merge whose "
                                                   "federated loss is this many times the last "
                                                   "good one (0: never).")
                               ] = default(F, "rollback_factor"),
    rollback_min_samples: Annotated[int, typer.Option(min=1, help="Samples that must back a "
                                                      "version's loss before it is judged.")
                                    ] = default(F, "rollback_min_samples"),
    state_dir: Annotated[Path | None, typer.Option(help="Checkpoint directory (default: "
                                                   "~/.local/state/fleetlearn/HOST_PORT/"
                                                   "PREFIX/ID).")] = None,
    checkpoints: Annotated[bool, typer.Option(help="Write a checkpoint after every model.")
                           ] = True,
    keep: Annotated[int, typer.Option(min=1, help="Checkpoints kept.")] = default(A, "keep"),
    id: Annotated[str, typer.Option("--id", help="Node id.")] = default(A, "node_id"),
    site: Annotated[str | None, typer.Option(
        help="Be site S's aggregator (node id site-S) on the site's broker: merge its "
        "gateways' updates, send one site update up its bridge (--hierarchical) and adopt the "
        "core's model as the next site model.")] = None,
    up_interval: Annotated[float, typer.Option(
        min=0.0, help="With --site: seconds between two site updates up the bridge, at most "
        "(each holds everything since the site's global model; 0: after every merge).")
                           ] = default(SiteConfig, "up_interval"),
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    metrics_interval: MetricsOpt = default(A, "metrics_interval"),
    username: UserOpt = None,
    password: PasswordOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    give_up_after: GiveUpOpt = None,
    metrics_port: MetricsPortOpt = default(ExporterConfig, "port"),
    metrics_host: MetricsHostOpt = default(ExporterConfig, "host"),
    key: SigningKeyOpt = None,
    trust: TrustOpt = None,
) -> None:
    """Merge learner updates (FedAvg, async or robust) and broadcast versioned models."""
    deployment = topics(prefix)
    if site is not None:
        id = site_aggregator_id(site)
    broker_address = address(broker, username, password, tls_ca, tls_cert, tls_key)
    try:
        chosen = build_strategy(strategy, {
            "merge_rule": MergeRule(merge, trim, clip_norm), "round_timeout": round_timeout,
            "max_staleness": max_staleness, "alpha": alpha,
            "staleness": Staleness(staleness, staleness_a, staleness_b), "buffer": buffer,
            "server_lr": server_lr})
        federation = FederationConfig(
            chosen, quorum=quorum, momentum=momentum, max_samples=max_samples,
            drift_policy=drift_policy, drift_cooldown=drift_cooldown,
            rollback_factor=rollback_factor, rollback_min_samples=rollback_min_samples,
            learners=tuple(check_id(x.strip()) for x in learners.split(",") if x.strip())
            if learners else None,
            max_rate=max_rate, max_seq_jump=max_seq_jump)
        config = AggregatorConfig(
            node_id=check_id(id), federation=federation, keep=keep,
            state_dir=(state_dir or default_state_dir(deployment.prefix, id, broker_address))
            if checkpoints else None, metrics_interval=metrics_interval,
            keyring=keyring(key, trust, id, "aggregator" if site is None else "site_aggregator"))
        site_config = None if site is None else SiteConfig(site, up_interval)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    serve(Aggregator(config, deployment, broker_address) if site_config is None
          else SiteAggregator(config, deployment, broker_address, site_config), give_up_after,
          ExporterConfig(metrics_port, metrics_host))
