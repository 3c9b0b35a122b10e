"""The model message's JSON Schema, generated from typed descriptions of its members.

:mod:`broker.messages` holds numpy arrays, which no schema generator knows; so the wire form
of a model is described here once as msgspec structs (each member's type, bounds and meaning)
and msgspec writes the schema from them. ``docs/model.schema.json`` is this module's output
(``python -m broker.model_schema docs/model.schema.json``; a unit test holds the committed file
equal to it, and another holds these members equal to what :func:`broker.model_codec.encode_model`
writes). The schema checks each member alone; what ties members together (every vector as long
as the features, plus one for the scaler's target) is :func:`broker.model_codec.decode_model`'s
to check, and docs/model-format.md says so.

>>> schema = model_schema()
>>> schema["title"], schema["$defs"]["ModelMessage"]["required"][:3]
('fleetlearn model message, format 1.x', ['version', 'ts', 'n'])
>>> schema["$defs"]["ModelMessage"]["properties"]["format"]["pattern"]
'^1\\\\.(0|[1-9][0-9]*)$'
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal

import msgspec

from broker.field_checks import INT64_MAX
from broker.model_codec import FORMAT

_MAJOR = FORMAT.split(".")[0]
Name = Annotated[str, msgspec.Meta(min_length=1)]
Int64 = Annotated[int, msgspec.Meta(le=INT64_MAX)]


class ScalerMoments(msgspec.Struct, kw_only=True):
    """Running moments (Welford) of every feature then the target, over all samples the
    fleet learned: vectors of len(features) + 1."""

    count: Annotated[Int64, msgspec.Meta(ge=0, description="Samples the moments cover.")]
    mean: Annotated[list[float], msgspec.Meta(
        description="Mean of each feature, then of the target, in raw units.")]
    m2: Annotated[list[Annotated[float, msgspec.Meta(ge=0)]], msgspec.Meta(
        description="Sum of squared deviations from the mean (variance = m2 / count).")]


class LocalTimeZones(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The zones of the time features (hour_*, doy_*); absent: UTC everywhere."""

    default: Annotated[str, msgspec.Meta(
        description="The zone of every reading not named in zones: an IANA name "
                    "(America/New_York) or a fixed offset (+05:30, UTC-4).")] = "UTC"
    zones: Annotated[dict[str, str], msgspec.Meta(
        description="Zones by site or device name; a device's wins over its site's.")] = {}


class ModelMessage(msgspec.Struct, kw_only=True):
    """One synchronized model version, as the aggregator broadcasts it (retained, QoS 1)."""

    format: Annotated[str, msgspec.Meta(
        pattern=rf"^{_MAJOR}\.(0|[1-9][0-9]*)$",
        description="Wire format MAJOR.MINOR. A reader takes any minor of its major and "
                    "ignores members it does not know; it refuses another major. Absent: "
                    "1.0 (writers before the field).")] = "1.0"
    version: Annotated[Int64, msgspec.Meta(ge=1, description="Model version, from 1; the "
                                           "aggregator counts up by one.")]
    ts: Annotated[float, msgspec.Meta(description="When it was made: Unix seconds (UTC).")]
    n: Annotated[Int64, msgspec.Meta(ge=0, description="Samples learned into it, in all.")]
    contributors: Annotated[list[str], msgspec.Meta(
        description="Ids of the learners whose updates this version merged (empty for a "
                    "model restored from a checkpoint).")]
    target: Annotated[Name, msgspec.Meta(description="The channel it predicts.")]
    kind: Annotated[Literal["regression", "binary"], msgspec.Meta(
        description="regression: x.w + b is the prediction; binary: sigmoid(x.w + b) is "
                    "the probability of a 1.")]
    features: Annotated[list[Name], msgspec.Meta(
        description="Feature names, distinct, in the order of weights: channels and the "
                    "derived features of docs/model-format.md.")]
    weights: Annotated[list[float], msgspec.Meta(
        description="One weight per feature, in the features' raw units (no scaling to "
                    "apply before the dot product).")]
    intercept: Annotated[float, msgspec.Meta(
        description="b: in the target's raw units (regression), in log-odds (binary).")]
    scaler: ScalerMoments
    notes: Annotated[dict[str, Any], msgspec.Meta(
        description="Free-form remarks of the aggregator (strategy, drift); not needed "
                    "to predict.")] = {}
    local_time: Annotated[LocalTimeZones, msgspec.Meta(
        description="The local time hour_* and doy_* are computed in (docs/model-format.md); "
                    "absent: UTC. Since format 1.1.")] = msgspec.field(
        default_factory=LocalTimeZones)
    kid: Annotated[str, msgspec.Meta(
        pattern="^[0-9a-f]{16}$", description="Signed models only: the signer's key id "
                                             "(broker/signing.py).")] = ""
    sig: Annotated[str, msgspec.Meta(
        pattern="^[A-Za-z0-9_-]{86}$", description="Signed models only: Ed25519 signature, "
                                                  "base64url, of everything before kid.")] = ""


def model_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model message."""
    generated = msgspec.json.schema(ModelMessage)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"fleetlearn model message, format {_MAJOR}.x",
            "description": "See docs/model-format.md. Generated by broker/model_schema.py; "
                           "do not edit.",
            **generated}


def schema_text() -> str:
    """The schema as it is committed: two-space indents, a newline at the end."""
    return json.dumps(model_schema(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    """Write the schema to the file named (stdout without one)."""
    if len(argv) > 1:
        print("usage: python -m broker.model_schema [FILE]", file=sys.stderr)
        return 2
    if argv:
        with open(argv[0], "w", encoding="utf-8") as out:
            out.write(schema_text())
    else:
        sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
