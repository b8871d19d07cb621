"""Geography: distances, the shipped country table, name matching, nearest country, centroids."""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from geomusic_lib.data import geo

GEO_FIXTURES = "geo"


def _names(fixtures, filename: str) -> list[str]:
    return (fixtures / GEO_FIXTURES / filename).read_text(encoding="utf-8").splitlines()


# --- distances -----------------------------------------------------------------------------------

def test_london_paris_is_about_344_km():
    assert geo.great_circle_km(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(344, abs=1.5)


def test_new_york_los_angeles_is_about_3936_km():
    assert geo.great_circle_km(40.7128, -74.0060, 34.0522, -118.2437) == pytest.approx(3936, abs=10)


def test_antipode_is_half_the_circumference():
    assert geo.great_circle_km(10.0, 20.0, -10.0, -160.0) == pytest.approx(np.pi * geo.EARTH_RADIUS_KM)


def test_distance_is_zero_for_the_same_point_and_symmetric():
    assert geo.great_circle_km(12.65, -8.0, 12.65, -8.0) == 0.0
    assert geo.great_circle_km(0, 0, 10, 10) == pytest.approx(geo.great_circle_km(10, 10, 0, 0))


def test_distance_broadcasts_over_arrays():
    lat = np.array([[51.5074], [48.8566]])
    lon = np.array([[-0.1278], [2.3522]])
    km = geo.great_circle_km(lat, lon, lat.T, lon.T)
    assert km.shape == (2, 2)
    assert np.allclose(np.diag(km), 0.0)
    assert km[0, 1] == pytest.approx(km[1, 0])


# --- the shipped table ---------------------------------------------------------------------------

def test_country_table_has_unique_names_and_codes():
    table = geo.country_table()
    assert len(table) >= 249
    for column in ("country", "iso2", "iso3"):
        assert not table[column].duplicated().any(), column
    assert table[["lat", "lon"]].notna().all().all()
    assert table["lat"].between(-90, 90).all() and table["lon"].between(-180, 180).all()


def test_every_row_has_a_known_continent_and_a_region():
    table = geo.country_table()
    assert set(table["continent"]) == set(geo.CONTINENTS)
    assert (table["region"] != "").all()


def test_namibia_iso_code_is_not_read_as_missing():
    assert geo.country_info("Namibia").iso2 == "NA"
    assert geo.country_info("NA").country == "Namibia"


def test_every_alias_points_at_a_canonical_country():
    with (resources.files("geomusic_lib.data") / "country_aliases.csv").open("r", encoding="utf-8") as fh:
        aliases = pd.read_csv(fh, keep_default_na=False)
    canonical = set(geo.country_table()["country"])
    assert set(aliases["country"]) <= canonical
    assert not aliases["alias"].map(geo.name_key).duplicated().any()
    assert not set(aliases["alias"].map(geo.name_key)) & {geo.name_key(c) for c in canonical}


@pytest.mark.parametrize("country, region, continent", [
    ("Indonesia", "South-eastern Asia", "Asia"),
    ("Mali", "Western Africa", "Africa"),
    ("Brazil", "South America", "South America"),
    ("Jamaica", "Caribbean", "North America"),
    ("Australia", "Australia and New Zealand", "Oceania"),
    ("United Kingdom", "Northern Europe", "Europe"),
    ("Mexico", "Central America", "North America"),
    ("Kenya", "Eastern Africa", "Africa"),
    ("Uzbekistan", "Central Asia", "Asia"),
    ("Cyprus", "Western Asia", "Asia"),
])
def test_region_and_continent_of_a_country(country, region, continent):
    assert geo.region_of(country) == region
    assert geo.continent_of(country) == continent


def test_country_coordinates_are_the_capital():
    lat, lon = geo.country_coordinates("France")
    assert geo.great_circle_km(lat, lon, 48.8566, 2.3522) < 5
    assert geo.country_info("France").capital == "Paris"


# --- name matching -------------------------------------------------------------------------------

@pytest.mark.parametrize("alias, canonical", [
    ("United States of America", "United States"), ("Aland", "Åland Islands"), ("Czechia", "Czechia"),
    ("Republic of the Congo", "Republic of the Congo"), ("DR Congo", "Democratic Republic of the Congo"),
    ("Ivory Coast", "Ivory Coast"), ("Côte d'Ivoire", "Ivory Coast"), ("Cote d'Ivoire", "Ivory Coast"),
    ("Türkiye", "Turkey"), ("Russia", "Russia"), ("South Korea", "South Korea"), ("Taiwan", "Taiwan"),
    ("Cape Verde", "Cape Verde"), ("Cabo Verde", "Cape Verde"), ("Myanmar", "Myanmar"), ("Burma", "Myanmar"),
    ("Macedonia", "North Macedonia"), ("North Macedonia", "North Macedonia"), ("Eswatini", "Eswatini"),
    ("Swaziland", "Eswatini"), ("The Bahamas", "Bahamas"), ("Gambia", "Gambia"), ("Vatican", "Vatican City"),
    ("Palestine", "Palestine"), ("Hong Kong S.A.R.", "Hong Kong"), ("  united kingdom ", "United Kingdom"),
    ("St. Lucia", "Saint Lucia"), ("Trinidad & Tobago", "Trinidad and Tobago"), ("GBR", "United Kingdom"),
])
def test_aliases_resolve_to_canonical_names(alias, canonical):
    assert geo.normalise_country_name(alias) == canonical


def test_every_radio_garden_country_resolves(fixtures):
    names = _names(fixtures, "radio_garden_countries.txt")
    assert len(names) == 173
    assert [n for n in names if geo.lookup_country(n) is None] == []


def test_every_mirage_dashboard_country_resolves(fixtures):
    names = _names(fixtures, "mirage_mc_countries.txt")
    assert len(names) == 177
    assert [n for n in names if geo.lookup_country(n) is None] == []


def test_unknown_name_raises_key_error_that_suggests_names():
    with pytest.raises(KeyError, match="Close matches: Bahamas"):
        geo.country_info("Bahamass")
    with pytest.raises(KeyError, match="country_aliases.csv"):
        geo.normalise_country_name("Atlantis")


def test_lookup_country_returns_default_for_unknown_names():
    assert geo.lookup_country("Atlantis") is None
    assert geo.lookup_country(None) is None
    assert geo.lookup_country("Mali").iso3 == "MLI"


# --- nearest country -----------------------------------------------------------------------------

def test_nearest_country_names_all_uci_classes():
    with (resources.files("geomusic_lib.data") / "uci_geo_music" / "classes_derived.csv").open() as fh:
        classes = pd.read_csv(fh)
    assert len(classes) == 33
    named = [geo.nearest_country(lat, lon, min_population=1000) for lat, lon in classes[["lat", "lon"]].to_numpy()]
    assert named == classes["country_derived"].tolist()


def test_rome_names_vatican_city_unless_microstates_are_skipped():
    assert geo.nearest_country(41.9, 12.48) == "Vatican City"
    assert geo.nearest_country(41.9, 12.48, min_population=1000) == "Italy"


# --- centroids -----------------------------------------------------------------------------------

def test_centroid_across_the_date_line_is_near_180():
    out = geo.class_centroids(["Fiji", "Fiji"], [-17.0, -17.0], [179.0, -179.0])
    assert abs(out.loc[0, "lon"]) == pytest.approx(180.0, abs=1e-6)
    assert out.loc[0, "lat"] == pytest.approx(-17.0, abs=0.01)


def test_centroid_falls_back_to_the_capital_when_a_class_has_no_coordinates():
    out = geo.class_centroids(["Mali", "Kenya", "Kenya", "Nowhere"], [np.nan, -1.0, 1.0, np.nan],
                              [np.nan, 36.0, 36.0, np.nan]).set_index("class")
    assert list(out.index) == ["Kenya", "Mali", "Nowhere"]
    assert tuple(out.loc["Mali"]) == pytest.approx(geo.country_coordinates("Mali"))
    assert tuple(out.loc["Kenya"]) == pytest.approx((0.0, 36.0), abs=1e-9)
    assert out.loc["Nowhere"].isna().all()
