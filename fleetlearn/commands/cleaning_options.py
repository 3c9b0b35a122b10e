"""The cleaning options of the commands that judge readings (gateway, predict, evaluate): one
declaration each, so their help and bounds cannot drift apart (defaults stay with each
command's owner dataclass).

>>> import typing
>>> typing.get_args(ZOpt)[1].min
0.1
"""

from __future__ import annotations

from typing import Annotated

import typer

MaxAgeOpt = Annotated[float, typer.Option(
    min=0.0, help="Seconds a reading's timestamp may lag our clock (0: no limit, for replays).")]
MaxSkewOpt = Annotated[float, typer.Option(
    min=0.0, help="Seconds it may lead our clock (0: no limit).")]
ImputeMaxAgeOpt = Annotated[float, typer.Option(
    min=0.0, help="Seconds a value may be old and still fill a gap (0: no limit).")]
ReorderWindowOpt = Annotated[int, typer.Option(
    min=1, help="Sequence numbers a late reading may trail by.")]
MaxSeqJumpOpt = Annotated[int, typer.Option(
    min=1, help="How far above a device's mark its next number may be; further: refused as "
    "seq_jump.")]
ImputeOpt = Annotated[str, typer.Option(
    help="Fill a missing feature with its 'last' value, its 'mean', or 'none'.")]
OutliersOpt = Annotated[str, typer.Option(help="'median' (replace), 'clip', 'reject' or 'none'.")]
ZOpt = Annotated[float, typer.Option(min=0.1, help="Robust deviations that make an outlier.")]
SmoothOpt = Annotated[float | None, typer.Option(
    min=0.001, max=1.0, help="EMA weight of a new value (default: no smoothing).")]
