"""Write the measured results into README.md between the results markers.

Reads the run's `eval/metrics.csv` (from `make book`) and `benchmarks/out/uci_cv.md` (from
`make bench`); nothing is typed by hand. Usage: python benchmarks/update_readme.py [runs/default]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from geomusic_lib.bookpages import results_table_markdown

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def bench_table() -> str:
    path = REPO / "benchmarks" / "out" / "uci_cv.md"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "_Run `make bench` for the 10-fold CV table._"


def main() -> None:
    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/default")
    holdout = (f"Holdout test split of the `{run_dir.name}` run (`make book`):\n\n"
               + results_table_markdown((REPO / run_dir).resolve(), REPO))
    body = f"{START}\n{holdout}\n\n10-fold cross-validation on UCI (`make bench`):\n\n{bench_table()}\n{END}"
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S), encoding="utf-8")
    print(body)


if __name__ == "__main__":
    main()
