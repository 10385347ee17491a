"""Geographic segmentation: spatial clusters recover the planted regions; rollups, lookup, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from analysis import contract, io
from analysis.config import load_config
from analysis.sample import generate_sample
from analysis.segment import geographic

from .conftest import SAMPLE_CONFIG

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


def test_revenue_windows_need_two_years():
    tx = pd.DataFrame({"customer_id": ["a", "a"], "order_id": ["1", "2"], "amount": [5.0, 7.0],
                       "timestamp": pd.to_datetime(["2023-06-01", "2024-06-01"])})
    windows, label = geographic.revenue_windows(tx, "2024-12-31")
    assert windows is None and "growth not shown" in label
    tx.loc[0, "timestamp"] = pd.Timestamp("2023-01-05")
    windows, _ = geographic.revenue_windows(tx, "2024-12-31")
    assert windows.loc["a"].tolist() == [7.0, 5.0]


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


def test_home_locations_keep_city_inside_state():
    tx = pd.DataFrame({"customer_id": ["a"] * 5, "order_id": ["1", "2", "3", "4", "5"],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]),
                       "state": ["Texas", "Texas", "Ohio", "Ohio", "California"],
                       "city": ["Houston", "Dallas", "Columbus", "Columbus", "Dallas"]})
    # taken separately, the modes would be Texas (2, alphabetical tie with Ohio) and Dallas (2): a mismatched pair
    customers = pd.DataFrame({"customer_id": ["a"], "state": ["Texas"], "city": ["Dallas"]})
    out, notes = geographic.home_locations(customers, tx)
    assert out[["state", "city"]].iloc[0].tolist() == ["Ohio", "Columbus"]
    assert notes


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
