"""Geographic segmentation: spatial clusters recover the planted regions; rollups, lookup, edge cases."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from analysis import contract, io, plots, workspace
from analysis.config import load_config
from analysis.sample import generate_sample
from analysis.segment import geographic

from .conftest import PROJECT_ROOT, SAMPLE_CONFIG, shared_path

LOOKUP = io.read_yaml(None, "us_states.yaml")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def generated():
    sample = generate_sample(2000, random_state=5)
    cfg = load_config(SAMPLE_CONFIG)
    raw = {t: io.RawTable(frame=sample[t], original=sample[t], files=[], mapping={}) for t in ("customers", "transactions")}
    tables = contract.prepare(raw, cfg).tables
    truth = sample["truth"].set_index("customer_id")["true_geographic_segment"]
    return tables, truth, cfg


def test_spatial_clusters_recover_planted_regions(generated):
    tables, truth, cfg = generated
    result = geographic.segment_geographic(tables["customers"], tables["transactions"], as_of=cfg.as_of, n_bootstrap=2, random_state=0)
    assert result.k_choice.k == 5, result.evidence
    labels = result.labels.set_index("customer_id")["geographic_segment"]
    assert adjusted_rand_score(truth.reindex(labels.index), labels) >= 0.8
    # each segment is named after its dominant region, so names match the planted regions
    assert set(result.profiles["segment"]) == set(truth)
    assert result.profiles["radius_km"].max() < 200
    assert "growth_pct" in result.rollups["region"]
    assert set(result.splits) >= {"urban_rural", "climate_zone"}


def test_haversine_london_paris():
    d = geographic.haversine_km(np.array([51.5074]), np.array([-0.1278]), np.array([48.8566]), np.array([2.3522]))
    assert d[0] == pytest.approx(343.5, abs=1.0)


def test_unit_sphere_round_trip():
    lat, lon = np.array([10.0, -45.0, 60.0]), np.array([179.0, -120.0, 0.5])
    back = geographic.from_unit_sphere(geographic.to_unit_sphere(lat, lon))
    np.testing.assert_allclose(back[0], lat, atol=1e-9)
    np.testing.assert_allclose(back[1], lon, atol=1e-9)


def test_rollup_by_hand_with_growth_and_penetration():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "region": ["N", "N", "S", "S"],
                              "city": ["X", "Y", "Z", "Z"], "population": [1e6, 2e6, 5e5, 5e5]})
    value = pd.Series([10.0, 30.0, 20.0, 40.0], index=list("abcd"))
    windows = pd.DataFrame({"revenue_recent": [10.0, 20.0, 0, 30.0], "revenue_previous": [5.0, 5.0, 10.0, 10.0]}, index=list("abcd"))
    region = geographic.rollup(customers, "region", value, windows, population="population").set_index("region")
    assert region.loc["S", "revenue"] == 60.0 and region.loc["N", "revenue_per_customer"] == 20.0
    assert region.loc["N", "growth_pct"] == pytest.approx(100 * (30 / 10 - 1))
    assert region.loc["N", "population"] == 3e6  # X + Y
    assert region.loc["S", "population"] == 5e5  # Z counted once
    assert region.loc["S", "penetration_per_million"] == pytest.approx(2 / 0.5)
    assert region.index.tolist() == ["S", "N"]  # by revenue
    city = geographic.rollup(customers, "city", value).set_index("city")
    assert city.loc["Z", "customers"] == 2 and city.loc["Z", "revenue_pct"] == pytest.approx(60.0)


@pytest.mark.parametrize("in_place", [False, True])
def test_revenue_windows_need_two_years(tmp_path, in_place):
    """The same from the order lines as a DataFrame or as their Parquet file (summed by DuckDB in place)."""
    def source(frame):
        if not in_place:
            return frame
        frame.to_parquet(tmp_path / "tx.parquet")
        return tmp_path / "tx.parquet"

    tx = pd.DataFrame({"customer_id": ["a", "a"], "order_id": ["1", "2"], "amount": [5.0, 7.0],
                       "timestamp": pd.to_datetime(["2023-06-01", "2024-06-01"])})
    windows, label = geographic.revenue_windows(source(tx), "2024-12-31")
    assert windows is None and label == "growth not shown: the transactions start on 01 Jun 2023, after the start of the earlier 12-month window (01 Jan 2023)"
    tx.loc[0, "timestamp"] = pd.Timestamp("2023-01-05")
    windows, label = geographic.revenue_windows(source(tx), "2024-12-31")
    assert windows.loc["a"].tolist() == [7.0, 5.0]
    assert label == "01 Jan 2024-31 Dec 2024 vs 01 Jan 2023-31 Dec 2023"
    # a line after the end of as_of is in neither window; the last second of as_of still counts
    later = pd.DataFrame({"customer_id": ["a", "a", "b"], "order_id": ["3", "4", "5"], "amount": [100.0, 11.0, 3.0],
                          "timestamp": pd.to_datetime(["2025-01-01 00:00:00", "2024-12-31 23:59:59", "2025-02-01 00:00:00"])})
    windows, _ = geographic.revenue_windows(source(pd.concat([tx, later], ignore_index=True)), "2024-12-31")
    assert windows.index.tolist() == ["a"] and windows.loc["a"].tolist() == [18.0, 5.0]
    empty, reason = geographic.revenue_windows(source(tx.iloc[:0]), "2024-12-31")
    assert empty is None and reason == "growth needs transactions"


def test_rollup_segments_pool_small_areas():
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                              "region": ["West"] * 6 + ["East"] * 4,
                              "state": ["CA"] * 5 + ["NV"] + ["NY"] * 3 + [None]})
    labels, level, reason = geographic.rollup_segments(customers, min_segment_size=3)
    assert level == "state"
    assert labels.tolist() == ["CA"] * 5 + ["Other West"] + ["NY"] * 3 + [geographic.UNKNOWN_LOCATION]
    assert "No latitude/longitude" in reason


def test_us_state_lookup_adds_climate_and_census_region():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "state": ["California", "tx", "Atlantis"]})
    out, notes = geographic.enrich_from_lookup(customers, LOOKUP, min_match=0.5)
    assert out["climate_zone"].tolist()[:2] == ["mediterranean", "humid subtropical"]
    assert out["census_region"].tolist()[:2] == ["West", "South"]
    assert out["state_population"].iloc[0] == 39538223 and np.isnan(out["state_population"].iloc[2])
    assert any("Atlantis" in n for n in notes)
    # data columns win over the lookup; a table of non-US states is left alone
    own = customers.assign(climate_zone=["foggy", None, None])
    assert geographic.enrich_from_lookup(own, LOOKUP, min_match=0.5)[0]["climate_zone"].iloc[0] == "foggy"
    foreign = pd.DataFrame({"customer_id": ["a", "b"], "state": ["Bavaria", "Ontario"]})
    kept, notes = geographic.enrich_from_lookup(foreign, LOOKUP)
    assert "climate_zone" not in kept and "not applied" in notes[0]


def test_lookup_populations_add_up_to_the_2020_census():
    table = geographic.lookup_frame(LOOKUP)
    assert len(table) == 51 and table["population"].sum() == 331_449_281


def _two_countries() -> tuple[pd.DataFrame, pd.Series]:
    """Repeated names under different parents: "West" and "East" in the US and in Canada, a
    Columbus in Ohio and one in Georgia; Canadian provinces too small to be segments."""
    rows = ([("United States", "West", "California", "Los Angeles", 100.0)] * 40
            + [("United States", "West", "Nevada", "Reno", 60.0)] * 3
            + [("United States", "East", "Ohio", "Columbus", 10.0)] * 35
            + [("United States", "South", "Georgia", "Columbus", 20.0)] * 32
            + [("Canada", "West", "British Columbia", "Vancouver", 50.0)] * 4
            + [("Canada", "West", "Alberta", "Calgary", 30.0)] * 3
            + [("Canada", "East", "Ontario", "Toronto", 40.0)] * 5)
    frame = pd.DataFrame(rows, columns=["country", "region", "state", "city", "value"])
    frame.insert(0, "customer_id", [f"c{i:03d}" for i in range(len(frame))])
    return frame.drop(columns="value"), pd.Series(frame["value"].to_numpy(), index=frame["customer_id"])


def test_repeated_names_are_totalled_and_named_by_full_path():
    customers, value = _two_countries()
    region = geographic.rollup(customers, "region", value).set_index("area")
    # one row per (country, region): US West and Canada West are summed apart, never averaged together
    assert region["revenue"].to_dict() == {"West, United States": 40 * 100.0 + 3 * 60.0, "South": 32 * 20.0, "East, United States": 35 * 10.0,
                                          "West, Canada": 4 * 50.0 + 3 * 30.0, "East, Canada": 5 * 40.0}
    assert region["revenue"].sum() == value.sum() and region.loc["West, Canada", "customers"] == 7
    city = geographic.rollup(customers, "city", value).set_index("area")
    assert city.loc["Columbus, Ohio", "revenue"] == 350.0 and city.loc["Columbus, Georgia", "revenue"] == 640.0
    assert city.loc["Los Angeles", "customers"] == 40 and "Columbus" not in city.index
    # the chart draws each full path's total under its own name
    fig = plots.rollup_bars({"region": region.reset_index(), "city": city.reset_index()}, "revenue", "revenue", "t")
    drawn = {t.get_text(): p.get_width() for t, p in zip(fig.axes[0].get_yticklabels(), fig.axes[0].patches)}
    assert drawn == region["revenue"].to_dict()
    drawn_city = {t.get_text(): p.get_width() for t, p in zip(fig.axes[1].get_yticklabels(), fig.axes[1].patches)}
    assert drawn_city["Columbus, Georgia"] == 640.0 and drawn_city["Columbus, Ohio"] == 350.0
    plt.close(fig)


def test_state_codes_from_the_lookup_name_repeated_cities():
    customers, value = _two_countries()
    result = geographic.segment_geographic(customers, spend=value, as_of="2024-12-31", lookup=LOOKUP, min_segment_size=30)
    cities = set(result.rollups["city"]["area"])
    assert {"Columbus, OH", "Columbus, GA", "Vancouver"} <= cities
    # the US state lookup applies to the US only; Canadian customers keep blank lookup attributes and are named in a note
    enriched = result.customers.set_index("customer_id")
    assert enriched.loc[customers["country"].eq("Canada").to_numpy(), "climate_zone"].isna().all()
    assert enriched.loc[customers["country"].eq("United States").to_numpy(), "climate_zone"].notna().all()
    assert any("Canada" in n for n in result.notes)


def test_small_areas_pool_within_their_country():
    customers, _ = _two_countries()
    labels, level, reason = geographic.rollup_segments(customers, min_segment_size=30)
    assert level == "city"
    frame = customers.set_index("customer_id").assign(segment=labels)
    assert frame.groupby("segment")["country"].nunique().max() == 1  # no segment mixes countries
    assert set(frame.loc[frame["country"] == "Canada", "segment"]) == {"Canada"}  # a country with no area of its own: one group
    assert set(frame.loc[frame["city"] == "Reno", "segment"]) == {"Other United States"}  # too small for a region pool
    assert set(frame.loc[frame["state"] == "Georgia", "segment"]) == {"Columbus, Georgia"}
    assert "never across countries" in reason


def test_segments_come_from_the_customer_table_not_a_second_derivation():
    # the customer table (as validated, exported beside the segments) says Ohio; the order lines ship mostly to Texas.
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "state": ["Ohio"] * 40, "city": ["Columbus"] * 40})
    tx = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40) for _ in range(3)], "order_id": [str(i) for i in range(120)],
                       "timestamp": pd.Timestamp("2024-06-01"), "amount": 10.0, "state": ["Texas", "Texas", "Ohio"] * 40,
                       "city": ["Dallas", "Dallas", "Columbus"] * 40})
    result = geographic.segment_geographic(customers, tx, as_of="2024-12-31", min_segment_size=30)
    assert set(result.labels["geographic_segment"]) == {"Columbus"}
    assert result.rollups["state"]["area"].tolist() == ["Ohio"] and (result.customers["state"] == "Ohio").all()


def _consistent(exported: pd.DataFrame, labels: pd.Series, level: str) -> pd.Series:
    """Whether each customer's segment is their area at ``level``, a pool of one of its parents
    ("Other <parent>" or the parent itself) or unknown location, judged from the exported columns."""
    names = {lvl: geographic.area_labels(exported, lvl) for lvl in geographic.levels_present(exported)}
    segment = labels.reindex(exported["customer_id"].astype(str)).to_numpy()
    ok = pd.Series(segment == names[level].to_numpy(), index=exported.index)
    ok |= segment == geographic.UNKNOWN_LOCATION
    for parent, named in names.items():
        if geographic.LEVELS.index(parent) < geographic.LEVELS.index(level):
            ok |= (segment == named.to_numpy()) | (segment == ("Other " + named).to_numpy())
    return ok


@pytest.mark.shared_data
def test_superstore_segment_agrees_with_the_location_exported_beside_it():
    shared_path("superstore", "Sample - Superstore.csv")
    cfg = load_config(PROJECT_ROOT / "config" / "superstore.yaml")
    tables = contract.prepare(workspace.read_raw(cfg), cfg).tables
    customers = tables["customers"]
    result = geographic.segment_geographic(customers, tables["transactions"], as_of=cfg.as_of, lookup=LOOKUP, n_bootstrap=1)
    labels = result.labels.set_index("customer_id")["geographic_segment"]
    exported = customers[["customer_id", "country", "region", "state", "city"]]  # what assemble_exports writes
    level = result.method.split(": ")[-1]
    assert level == "state" and len(labels) == len(exported) == 793
    ok = _consistent(exported, labels, level)
    assert ok.all(), exported[~ok].assign(segment=labels.reindex(exported.loc[~ok, "customer_id"]).to_numpy()).head()
    # every full path maps to one segment; the Columbuses and Springfields are apart
    assert exported.assign(s=labels.reindex(exported["customer_id"]).to_numpy()).groupby(["region", "state"])["s"].nunique().max() == 1
    assert {"Columbus, OH", "Columbus, GA", "Columbus, IN"} <= set(result.rollups["city"]["area"])


@pytest.mark.slow
@pytest.mark.shared_data
def test_superstore_export_never_contradicts_itself(tmp_path):
    shared_path("superstore", "Sample - Superstore.csv")
    proc = subprocess.run([sys.executable, "-m", "analysis", "run", "--config", str(PROJECT_ROOT / "config" / "superstore.yaml"),
                           "--run-id", "geo", "--reports-dir", str(tmp_path), "--only", "00_data_prep", "11_geographic"],
                          check=False, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    exported = pd.read_csv(tmp_path / "geo" / "exports" / "customers.csv", dtype=str)
    labels = exported.set_index("customer_id")["geographic_segment"]
    ok = _consistent(exported, labels, "state")
    assert len(exported) == 793 and ok.all(), exported[~ok].head()


def test_missing_coordinates_and_no_location():
    rng = np.random.default_rng(0)
    n = 120
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                              "latitude": np.r_[rng.normal(51.5, 0.05, 60), rng.normal(40.4, 0.05, 58), [np.nan, np.nan]],
                              "longitude": np.r_[rng.normal(-0.1, 0.05, 60), rng.normal(-3.7, 0.05, 58), [np.nan, np.nan]],
                              "city": ["London"] * 60 + ["Madrid"] * 58 + [None, None]})
    result = geographic.segment_geographic(customers, as_of="2024-12-31", k_range=(2, 4), n_bootstrap=1, random_state=0)
    labels = result.labels.set_index("customer_id")["geographic_segment"]
    assert labels.value_counts().to_dict() == {"London": 60, "Madrid": 58, geographic.UNKNOWN_LOCATION: 2}
    assert any("without coordinates" in n for n in result.notes)
    none = geographic.segment_geographic(pd.DataFrame({"customer_id": ["a", "b"], "age": [30, 40]}), as_of="2024-12-31")
    assert not none.available and "not available in this data" in none.message


def test_segment_mix_rows_add_to_100():
    geo = pd.Series(["N", "N", "S", "S", "S"], index=list("abcde"))
    other = pd.Series(["x", "y", "x", "x", "y"], index=list("abcde"))
    mix = geographic.segment_mix(geo, other)
    np.testing.assert_allclose(mix.sum(axis=1), 100.0)
    assert mix.loc["S", "x"] == pytest.approx(200 / 3)
