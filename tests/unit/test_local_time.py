"""Time and place in features: hour and day-of-year in the local time of each site or device
(daylight saving included), device one-hot features, and the same features in the gateway's
compiled stage, its reference, the predictor's model and the Python API."""

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import fleetlearn
from broker.messages import LinearParams, Scaler, Update
from broker.messages import Model as Message
from broker.model_codec import encode_model
from broker.reading_codec import encode_reading
from fleetlearn.config import default_map, parse_config
from gateway.cleaning import CleaningConfig
from gateway.features import FeatureBuilder, FeatureSpec
from gateway.local_time import LocalTime, offsets
from gateway.pipeline import ReadingPipeline
from learners.federation import Federation, FederationConfig

pytestmark = pytest.mark.timeout(60)

SPRING = datetime(2013, 3, 10, 7, tzinfo=ZoneInfo("UTC")).timestamp()  # 2 a.m. EST -> 3 a.m.
AUTUMN = datetime(2013, 11, 3, 6, tzinfo=ZoneInfo("UTC")).timestamp()  # 2 a.m. EDT -> 1 a.m.
ZONES = LocalTime("America/New_York", {"paris": "Europe/Paris", "d9": "+05:30"})
FEATURES = ("a", "hour_sin", "hour_cos", "doy_sin", "doy_cos", "site_paris", "device_d1")


def local_hour(ts: float, zone: str) -> float:
    t = datetime.fromtimestamp(ts, ZoneInfo(zone))
    return t.hour + t.minute / 60 + t.second / 3600


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "Australia/Lord_Howe",
                                  "Asia/Kolkata", "America/St_Johns"])
def test_offsets_are_zoneinfos_on_every_hour_of_several_years(zone):
    ts = np.arange(datetime(2012, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp(),
                   datetime(2016, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp(), 3600.0)
    want = [datetime.fromtimestamp(t, ZoneInfo(zone)).utcoffset().total_seconds()
            for t in ts[::7]]
    assert offsets(ts[::7], zone).tolist() == want


@pytest.mark.parametrize(("boundary", "before", "after"), [(SPRING, -5.0, -4.0),
                                                           (AUTUMN, -4.0, -5.0)])
def test_new_york_changes_offset_at_the_second_daylight_saving_does(boundary, before, after):
    got = offsets(np.array([boundary - 1.0, boundary, boundary + 1.0]), "America/New_York")
    assert (got / 3600).tolist() == [before, after, after]


def test_fixed_offsets_and_unknown_zones():
    assert offsets(np.array([0.0, 1e9]), "UTC+05:30").tolist() == [19800.0, 19800.0]
    assert offsets(np.array([0.0]), "-04").tolist() == [-14400.0]
    with pytest.raises(ValueError, match="unknown time zone"):
        LocalTime("Atlantis/Capital")
    with pytest.raises(ValueError, match="unknown time zone"):
        LocalTime("UTC", {"s0": "+25:00"})


def test_the_hour_features_are_local_and_jump_at_daylight_saving():
    build = FeatureBuilder(FeatureSpec(("hour_sin", "hour_cos"), "y", ZONES))
    for ts in (SPRING - 1.0, SPRING, AUTUMN - 1.0, AUTUMN, 1_700_000_000.0):
        for site, device, zone in (("s0", "d1", "America/New_York"),
                                   ("paris", "d1", "Europe/Paris"),
                                   ("paris", "d9", "Asia/Kolkata")):  # the device's wins
            x, _ = build({"y": 0.0}, ts, device, site)
            angle = 2 * math.pi * local_hour(ts, zone) / 24
            assert x.tolist() == pytest.approx([math.sin(angle), math.cos(angle)], abs=1e-9)
    # spring: 01:59:59 then 03:00:00 local; in UTC the same two readings are one second apart
    before, _ = build({"y": 0.0}, SPRING - 1.0, "d1", "s0")
    after, _ = build({"y": 0.0}, SPRING, "d1", "s0")
    assert math.atan2(after[0], after[1]) - math.atan2(before[0], before[1]) == pytest.approx(
        2 * math.pi * (3600 + 1) / 86400)


def readings_across_daylight_saving(n=40):
    """(device, site, payload, now): hourly readings of three devices across spring's change."""
    out = []
    for i in range(n):
        device, site = [("d1", "s0"), ("d2", "paris"), ("d9", "paris")][i % 3]
        ts = SPRING + 1800.0 * (i - n // 2)
        out.append((device, site, encode_reading(fleetlearn_reading(device, i // 3, ts)), ts))
    return out


def fleetlearn_reading(device, seq, ts):
    from broker.messages import Reading

    return Reading(device, seq, ts, {"a": float(seq % 5), "y": 1.0 + seq})


def pipeline_rows(spec):
    pipe = ReadingPipeline(spec, CleaningConfig(max_age=math.inf, max_skew=math.inf))
    for device, site, payload, now in readings_across_daylight_saving():
        pipe.take(device, payload, now, site)
    return pipe.flush(outcomes=True).outcomes


def test_the_compiled_stage_computes_the_local_features_of_the_builder():
    spec = FeatureSpec(FEATURES, "y", ZONES)
    build = FeatureBuilder(spec)
    outcomes = pipeline_rows(spec)
    assert len(outcomes) == 40
    for (device, site, _, ts), got in zip(readings_across_daylight_saving(), outcomes,
                                          strict=True):
        want, _ = build(dict(got.values), ts, device, site)
        np.testing.assert_allclose(got.x, want, rtol=0, atol=1e-12)
        assert got.x[-1] == (device == "d1") and got.x[-2] == (site == "paris")
    utc = pipeline_rows(FeatureSpec(FEATURES, "y"))  # and local time changed something
    assert not np.allclose([o.x[1] for o in outcomes], [o.x[1] for o in utc])


def test_the_api_predicts_from_the_gateways_local_features():
    spec = FeatureSpec(FEATURES, "y", ZONES)
    params = LinearParams(FEATURES, np.linspace(0.5, 3.0, len(FEATURES)), -4.0)
    msg = Message(3, 0.0, 10, ("gw-0",), "y", params,
                  Scaler(10, np.arange(len(FEATURES) + 1.0), np.ones(len(FEATURES) + 1)),
                  local_time=ZONES.as_dict())
    model = fleetlearn.Model.from_message(encode_model(msg))
    for (device, site, _, ts), got in zip(readings_across_daylight_saving(),
                                          pipeline_rows(spec), strict=True):
        want = float(got.x @ params.weights + params.intercept)
        assert model.predict_one({"a": got.values["a"]}, ts=ts, device=device,
                                 site=site) == pytest.approx(want, abs=1e-9)
    with pytest.raises(fleetlearn.MissingInput, match="device="):
        model.predict_one({"a": 1.0}, ts=SPRING, site="s0")


def test_the_fleet_carries_the_gateways_local_time_into_its_models():
    federation = Federation(FederationConfig(quorum=1))
    params = LinearParams(("a",), np.array([1.0]), 0.0)
    update = Update("gw-0", 1, 0, 10, "y", params, 0.0, Scaler(10, np.zeros(2), np.ones(2)),
                    local_time=ZONES.as_dict())
    assert federation.offer(update, "gw-0", now=0.0) is None
    model = federation.step(now=1.0, ts=1.0)
    assert model is not None and model.local_time == ZONES.as_dict()


def test_the_config_file_names_the_zones():
    cfg = parse_config('[task]\nfeatures = ["a", "hour_sin"]\ntarget = "y"\n'
                       'timezone = "America/New_York"\n'
                       '[task.timezones]\nparis = "Europe/Paris"\nd9 = "+05:30"\n')
    options = default_map(cfg)
    assert options["gateway"]["timezone"] == "America/New_York"
    assert options["gateway"]["timezones"] == "paris=Europe/Paris,d9=+05:30"
    assert options["predict"]["timezones"] == options["evaluate"]["timezones"]
    assert "timezone" not in options.get("up", {})


ZONED_CSV = ("time,device,zone,a,y\n"
             "2013-03-10 01:30,jfk,America/New_York,1,2\n"
             "2013-03-10 03:30,jfk,America/New_York,1,2\n"
             "2013-03-10 08:30,cdg,Europe/Paris,1,2\n"
             "2013-03-10 08:30,bom,+05:30,1,2\n")


def test_a_zone_column_reads_each_rows_time_in_its_zone(tmp_path):
    from devices.replay_plan import load_readings

    path = tmp_path / "zoned.csv"
    path.write_text(ZONED_CSV)
    plan = load_readings(str(path), "time", "device", tz_col="zone")
    ts = {(r.device, r.seq): r.ts for r in plan.readings}
    # 01:30 EST and 03:30 EDT: one hour apart across the change; 08:30 in Paris is 07:30 UTC
    assert ts["jfk", 1] - ts["jfk", 0] == 3600.0
    assert ts["cdg", 0] == SPRING + 1800.0 and ts["bom", 0] == SPRING - 3600.0 * 4
    assert plan.zones == {"jfk": "America/New_York", "cdg": "Europe/Paris", "bom": "+05:30"}
    assert plan.channels == ("a", "y")  # the zone column is no channel
    path.write_text(ZONED_CSV.replace("+05:30", "Moon/Base"))
    with pytest.raises(ValueError, match="line 5: unknown time zone 'Moon/Base'"):
        load_readings(str(path), "time", "device", tz_col="zone")


def test_up_hands_the_zone_columns_zones_to_the_gateways(tmp_path):
    from devices.replay import ReplayConfig
    from fleetlearn.deploy.settings import UpSettings

    path = tmp_path / "zoned.csv"
    path.write_text(ZONED_CSV)
    replay = ReplayConfig(path=path, time_col="time", device_col="device", tz_col="zone")
    task = UpSettings(replay=replay, features="a", target="y").node_settings(
        {"task": {"timezones": {"bom": "Asia/Kolkata"}}})["task"]
    assert task["timezones"] == {"jfk": "America/New_York", "cdg": "Europe/Paris",
                                 "bom": "Asia/Kolkata"}  # the file's own entry wins
