"""`fleetlearn evaluate FILE`: the baselines table offline, without a broker.

A CSV (the replay's options) and a task (the gateway's task, learner and cleaning options, or
the ``[task]``, ``[learner]``, ``[cleaning]``, ``[sync]``, ``[replay]`` and ``[deployment]``
sections of ``--config``) in; every strategy of :mod:`fleetlearn.evaluate.strategies`, scored
prequentially per gateway, as their weighted mean and pooled, out as a table (and ``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from broker.topics import check_site
from devices.replay import ReplayConfig
from fleetlearn.commands import cleaning_options as clean
from fleetlearn.commands.common import (
    ClassWeightOpt,
    KindOpt,
    LrOpt,
    OptimizerOpt,
    PersonalizeOpt,
    ThresholdOpt,
    TimezoneOpt,
    TimezonesOpt,
    UsageProblem,
    default,
    local_time,
    names,
    resolve_data_path,
)
from fleetlearn.commands.devices import DateColOpt, SkipRowsOpt, TimeFormatOpt, TzColOpt
from fleetlearn.commands.gateway import cleaning_config
from fleetlearn.evaluate.settings import EvaluateSettings
from gateway.cleaning import ChannelPolicy, CleaningConfig
from gateway.features import FeatureSpec
from gateway.local_time import LocalTime

R, C, P, S = ReplayConfig, CleaningConfig, ChannelPolicy, EvaluateSettings

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {
    "timezone": (LocalTime, "default"),
    **{name: (S, name) for name in ("kind", "optimizer", "lr", "l2", "clip", "sync_every",
                                    "gateways", "class_weight", "threshold", "personalize")},
    **{name: (R, name) for name in ("date_col", "time_format", "skip_rows", "site",
                                    "tz_col")},
    "max_age": (C, "max_age"), "max_skew": (C, "max_skew"),
    "reorder_window": (C, "reorder_window"), "max_seq_jump": (C, "max_seq_jump"),
    "impute": (P, "impute"), "impute_max_age": (P, "max_age"), "outliers": (P, "outliers"),
    "z": (P, "z"), "smooth": (P, "smooth")}


def evaluate(
    file: Annotated[Path | None, typer.Argument(
        metavar="FILE", help="CSV file with a header row, or pkg:PACKAGE/PATH (default: "
        "[replay] file of --config).")] = None,
    time_col: Annotated[str | None, typer.Option("--time-col", help="Column of times.")
                        ] = None,
    device_col: Annotated[str | None, typer.Option("--device-col", help="Column of device "
                                                   "ids.")] = None,
    date_col: DateColOpt = default(R, "date_col"),
    tz_col: TzColOpt = default(R, "tz_col"),
    time_format: TimeFormatOpt = default(R, "time_format"),
    skip_rows: SkipRowsOpt = default(R, "skip_rows"),
    columns: Annotated[str | None, typer.Option(help="Comma-separated channel columns "
                                                "(default: every numeric column).")] = None,
    site: Annotated[str, typer.Option(help="Site of the devices.")] = default(R, "site"),
    features: Annotated[str | None, typer.Option(help="Comma-separated feature channels.")
                        ] = None,
    target: Annotated[str | None, typer.Option(help="Target channel.")] = None,
    timezone: TimezoneOpt = default(LocalTime, "default"),
    timezones: TimezonesOpt = None,
    kind: KindOpt = default(S, "kind"),
    optimizer: OptimizerOpt = default(S, "optimizer"),
    lr: LrOpt = default(S, "lr"),
    l2: Annotated[float, typer.Option(min=0.0, help="L2 penalty on standardised weights.")
                  ] = default(S, "l2"),
    clip: Annotated[float, typer.Option(min=1e-6, help="Clip of the standardised error.")
                    ] = default(S, "clip"),
    class_weight: ClassWeightOpt = default(S, "class_weight"),
    threshold: ThresholdOpt = default(S, "threshold"),
    gateways: Annotated[int, typer.Option(min=1, help="Gateways the devices are dealt out to, "
                                          "as `up --gateways`.")] = default(S, "gateways"),
    sync_every: Annotated[int, typer.Option(min=1, help="Samples of a gateway between its "
                                            "updates (federated).")] = default(S, "sync_every"),
    personalize: PersonalizeOpt = default(S, "personalize"),
    max_age: clean.MaxAgeOpt = default(C, "max_age"),
    max_skew: clean.MaxSkewOpt = default(C, "max_skew"),
    reorder_window: clean.ReorderWindowOpt = default(C, "reorder_window"),
    max_seq_jump: clean.MaxSeqJumpOpt = default(C, "max_seq_jump"),
    impute: clean.ImputeOpt = default(P, "impute"),
    impute_max_age: clean.ImputeMaxAgeOpt = default(P, "max_age"),
    outliers: clean.OutliersOpt = default(P, "outliers"),
    z: clean.ZOpt = default(P, "z"),
    smooth: clean.SmoothOpt = default(P, "smooth"),
    json: Annotated[Path | None, typer.Option("--json", help="Also write the figures to this "
                                              "file (JSON).")] = None,
) -> None:
    """Every strategy (persistence, each gateway alone, central, federated, personalised) on a CSV,
    prequential, without a broker: how to decide before deploying."""
    from devices.replay_plan import load_readings
    from fleetlearn.evaluate.run import evaluate as run
    from fleetlearn.evaluate.table import render

    if file is None:
        raise UsageProblem("give the CSV FILE (or [replay] file in --config)")
    if not time_col or not device_col:
        raise UsageProblem("--time-col and --device-col are needed (or [replay] in --config)")
    if not features or not target:
        raise UsageProblem("--features and --target are needed (or [task] in --config)")
    path = resolve_data_path(file)
    try:
        plan = load_readings(path, time_col, device_col, site=check_site(site),
                             columns=None if columns is None else names(columns, "--columns"),
                             date_col=date_col, time_format=time_format, skip_rows=skip_rows,
                             tz_col=tz_col)
        cleaning = cleaning_config(None, max_age, max_skew, reorder_window, max_seq_jump,
                                   impute, impute_max_age, outliers, z, smooth)
        zones = local_time(timezone, timezones)  # over the file's zone column
        zones = LocalTime(zones.default, {**plan.zones, **zones.zones})
        settings = S(FeatureSpec(names(features, "--features"), target, zones), kind=kind,
                     optimizer=optimizer, lr=lr, l2=l2, clip=clip, class_weight=class_weight,
                     threshold=threshold, sync_every=sync_every,
                     gateways=gateways, cleaning=cleaning, personalize=personalize)
        missing = [c for c in settings.spec.channels if c not in plan.channels]
        if missing:
            raise ValueError(f"the file carries no {', '.join(missing)}")
        result = run(plan, settings)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    console = Console()
    console.print(render(kind, result["strategies"], f"{path.name}: {result['samples']:,} of "
                         f"{result['readings']:,} readings learned, {gateways} gateways, "
                         f"prequential"))
    console.print(f"{result['models']} federated models; {result['seconds']:.1f} s after "
                  f"reading the file")
    if result["lr"] == "auto":
        steps = sorted({f"{v:.3g}" for v in result["federated_lr"].values()})
        personal = sorted({f"{v:.3g}" for v in (result["personal_lr"] or {}).values()})
        console.print(f"learning rate chosen online: {', '.join(steps)} (federated, at the end)"
                      + (f"; personal parts: {', '.join(personal)}" if personal else ""))
    if json is not None:
        json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
