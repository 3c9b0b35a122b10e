"""`fleetlearn bench`: the benchmark scenarios (:mod:`fleetlearn.bench`), their tables, and
their rows as JSON or a markdown section for docs/benchmarks.md."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from fleetlearn.commands.common import UsageProblem


def _counts(text: str, what: str) -> tuple[int, ...]:
    """``2,8,32`` as numbers, each at least 1."""
    try:
        counts = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise UsageProblem(f"{what} must be comma-separated whole numbers >= 1, not {text!r}")
    return counts


def bench(
    scenario: Annotated[list[str] | None, typer.Option(help="Scenario to run (repeatable): "
                                                       "cleaning, learning, ingest, sync, "
                                                       "scale, memory, drift, signing, security, "
                                                       "serving, topology "
                                                       "(default: all).")
                        ] = None,
    n: Annotated[int | None, typer.Option(min=10, help="cleaning / learning: readings per "
                                          "measurement (default: cleaning 50,000; learning "
                                          "the whole weather stream).")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="cleaning / learning / ingest / scale (2 "
                                         "gateways vs 1): runs per figure; the best counts.")
                       ] = 3,
    ingest_n: Annotated[int, typer.Option(min=10, help="ingest, security, serving: single "
                                          "readings per "
                                          "run."
                                          )] = 40_000,
    batch_n: Annotated[int, typer.Option(min=20, help="ingest, security, serving: readings per "
                                         "run in "
                                         "batches "
                                         "of 20.")] = 200_000,
    learners: Annotated[str, typer.Option(help="sync: numbers of learners.")] = "2,8,32",
    rounds: Annotated[int, typer.Option(min=1, help="sync, security: measured rounds each.")
                      ] = 50,
    scale_n: Annotated[int, typer.Option(min=20, help="scale: readings per run (at least 40 "
                                         "per device are sent).")] = 200_000,
    devices: Annotated[str, typer.Option(help="scale: numbers of devices.")
                       ] = "100,1000,10000",
    memory_n: Annotated[int, typer.Option(min=20, help="memory: readings before the RSS is "
                                          "read (the issue's figure: 1000000).")] = 200_000,
    soak: Annotated[float, typer.Option(min=0.0, help="memory: seconds of a soak at 1,000 "
                                        "readings/s for the RSS slope (0: none; the issue's "
                                        "figure: 600).")] = 0.0,
    signing_n: Annotated[int, typer.Option(min=10, help="signing, security: models "
                                           "verified and adopted per run.")] = 2000,
    drift_repeats: Annotated[int, typer.Option(min=1, help="drift: runs of the three policies "
                                               "(30 s each).")] = 1,
    security_learners: Annotated[int, typer.Option(min=1, help="security: learners of the "
                                                   "sync latency (plain, TLS, signed).")] = 8,
    latency_seconds: Annotated[float, typer.Option(min=0.5, help="serving: seconds of readings "
                                                   "at half capacity for the latency.")] = 5.0,
    topology_seconds: Annotated[float, typer.Option(min=1.0, help="topology: seconds each "
                                                    "of flat and bridged whose traffic into "
                                                    "the core is counted.")] = 20.0,
    partition_seconds: Annotated[float, typer.Option(min=0.0, help="topology: seconds site "
                                                     "s0's link stays cut before it heals.")
                                 ] = 20.0,
    topology_strategy: Annotated[str | None, typer.Option(help="topology: the aggregators' "
                                                          "strategy in both runs (as `up "
                                                          "--strategy`; default: up's).")
                                 ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the rows as JSON.")
                        ] = None,
    markdown_out: Annotated[Path | None, typer.Option("--markdown", help="Write a markdown "
                                                      "section for docs/benchmarks.md.")
                            ] = None,
) -> None:
    """Measure fleetlearn against a baseline of the same run, and print the ratios."""
    import datetime

    from rich.table import Table

    from fleetlearn.bench import SCENARIOS
    from fleetlearn.bench import scenario as scenario_function
    from fleetlearn.bench.report import by_scenario, markdown

    names = scenario or list(SCENARIOS)
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        raise UsageProblem(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    sizes = {"n": n} if n else {}
    options = {
        "cleaning": {**sizes, "repeats": repeats}, "learning": {**sizes, "repeats": repeats},
        "ingest": {"n": ingest_n, "batch_n": batch_n, "repeats": repeats},
        "sync": {"learners": _counts(learners, "--learners"), "rounds": rounds},
        "scale": {"n": scale_n, "devices": _counts(devices, "--devices"), "repeats": repeats},
        "memory": {"n": memory_n, "soak": soak},
        "drift": {"repeats": drift_repeats},
        "signing": {"count": signing_n, "repeats": repeats},
        "security": {"n": ingest_n, "batch_n": batch_n, "repeats": repeats,
                     "learners": security_learners, "rounds": rounds, "count": signing_n},
        "serving": {"n": ingest_n, "batch_n": batch_n, "repeats": repeats,
                    "latency_s": latency_seconds},
        "topology": {"seconds": topology_seconds, "partition_s": partition_seconds,
                     "strategy": topology_strategy},
    }
    console, status = Console(), Console(stderr=True)
    rows = []
    with status.status("fleetlearn bench") as spinner:
        for name in names:
            spinner.update(f"fleetlearn bench: {name}")
            rows += scenario_function(name)(progress=lambda text: spinner.update(text),
                                    **options[name])
    for name, (keys, cells) in by_scenario(rows).items():
        table = Table(title=f"{name} (ratio = fleetlearn / baseline, same run)",
                      title_justify="left")
        for key in keys:
            table.add_column(key, justify="left" if key in ("stream", "baseline") else "right")
        for row in cells:
            table.add_row(*row)
        console.print(table)
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    if markdown_out is not None:
        command = " ".join(["fleetlearn", *sys.argv[1:]]) if sys.argv[1:] else "fleetlearn bench"
        markdown_out.write_text(markdown(rows, command, datetime.date.today().isoformat()))
