"""Write the measured results into README.md between the results markers.

Reads each run's `eval/metrics.csv` (and tuning summary) from `make book PARAMS=...`, and the
benchmark tables under `benchmarks/out/` (`make bench`, `bench_spotify_country.py`, `bench_folk.py`);
nothing is typed by hand. A section whose run or table is not on this machine keeps the README's
earlier copy, marked as such (so one re-run does not erase the others).
Usage: python benchmarks/update_readme.py [runs/default runs/tuned runs/folk ...]
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from geomusic_lib.book import results_table_markdown, tuning_table_markdown
from geomusic_lib.core import read_manifest, RunDir

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
BENCH_TABLES = {"uci_cv.md": "10-fold cross-validation on UCI (`benchmarks/bench_uci_cv.py`)",
                "chroma_collapse.md": "UCI chroma copies: 72 distinct columns against the file's 116, 10-fold CV "
                                      "(`benchmarks/bench_uci_cv.py --compare-chroma`)",
                "spotify_country.md": "The spotify_country table, artist-grouped 5-fold CV (`benchmarks/bench_spotify_country.py`)",
                "folk_province.md": "Essen folk melodies, Chinese provinces, variant-grouped 5-fold CV "
                                    "(`benchmarks/bench_folk.py --levels province`): the fair test of melody reading",
                "folk_country.md": "Essen folk melodies, country level, variant-grouped 5-fold CV "
                                   "(`benchmarks/bench_folk.py --levels country`); the country label mostly follows "
                                   "the collection file",
                "mirage_scale.md": "MIRAGE at full scale: synthetic v1 exports of 10K-1M events through the whole book "
                                   "(`benchmarks/bench_mirage_scale.py`)"}


def run_section(run: RunDir) -> str:
    """The holdout results of one run, with the command that made it and, if it tuned, its trials."""
    manifest = read_manifest(run.path)
    params_file = manifest.get("params_file", "params/default.yaml")
    text = (f"### Run `{run.name}` (`make book PARAMS={params_file}`), holdout test split\n\n"
            f"*Made at {run_commit(manifest)}, on {manifest.get('created', '?')[:10]}.*\n\n"
            + results_table_markdown(run, REPO))
    tuning = tuning_table_markdown(run)
    if not tuning.startswith("```{note}"):
        text += f"\nTuning of run `{run.name}` (Optuna, validation rows only):\n\n{tuning}"
    return text


def run_commit(manifest: dict) -> str:
    """`commit 1a2b3c4d5e` of a run's manifest (and whether tracked files differed from it)."""
    git = manifest.get("git") or {}
    if not git.get("commit"):
        return "an unrecorded commit"
    return f"commit {git['commit'][:10]}" + (" with uncommitted changes" if git.get("dirty") else "")


def bench_section(title: str, text: str) -> str:
    """A benchmark table under its title, with the commit its stamp names; its own headings sit below the title's."""
    stamp = re.match(r"<!-- made at: (.*?) -->\n", text)
    made = f"*Made at {stamp.group(1)}.*" if stamp else "*Commit not recorded (the table predates the stamp).*"
    body = re.sub(r"^(#+) ", r"##\1 ", text[stamp.end():] if stamp else text, flags=re.M).strip()
    return f"### {title}\n\n{made}\n\n{body}"


def bench_sections() -> list[str]:
    """Each benchmark table found under benchmarks/out/, as `bench_section` shows it."""
    out = REPO / "benchmarks" / "out"
    return [bench_section(title, (out / name).read_text(encoding="utf-8"))
            for name, title in BENCH_TABLES.items() if (out / name).is_file()]


KEPT = "*(Kept from an earlier update: not re-run at the commit of the sections above.)*"


def earlier_sections(body: str) -> dict[str, str]:
    """The README's current result sections by their `### ` heading line."""
    parts = re.split(r"^(?=### )", body, flags=re.M)
    return {p.splitlines()[0]: p.strip() for p in parts if p.startswith("### ")}


def merged_sections(fresh: list[str], earlier: dict[str, str]) -> list[str]:
    """Fresh sections first, each replacing its earlier copy; earlier ones not made again follow, marked."""
    made = {section.splitlines()[0] for section in fresh}
    kept = [text if KEPT in text else f"{text}\n\n{KEPT}" for head, text in earlier.items() if head not in made]
    return fresh + kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", default=["runs/default"], help="run directories to report")
    args = parser.parse_args(argv)
    runs = [RunDir((REPO / r).resolve()) for r in args.runs]
    missing = [r.name for r in runs if not r.metrics_csv.is_file()]
    if missing:
        print(f"skipped (no eval/metrics.csv; run make book for them first): {', '.join(missing)}")
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    current = re.search(re.escape(START) + "(.*?)" + re.escape(END), text, flags=re.S)
    fresh = [run_section(r) for r in runs if r.metrics_csv.is_file()] + bench_sections()
    sections = merged_sections(fresh, earlier_sections(current.group(1) if current else ""))
    body = f"{START}\n" + "\n\n".join(sections) + f"\n{END}"
    readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S),
                      encoding="utf-8")
    print(body)


if __name__ == "__main__":
    main()
