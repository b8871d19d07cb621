"""Write the measured results into README.md between the results markers.

Reads the run's `eval/metrics.csv` (from `make book`) and `benchmarks/out/uci_cv.md` (from
`make bench`); nothing is typed by hand. Usage: python benchmarks/update_readme.py [runs/default]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def run_table(run_dir: Path) -> str:
    path = run_dir / "eval" / "metrics.csv"
    if not path.is_file():
        return f"_No run results yet: `{path.relative_to(REPO)}` is missing (run `make book`)._"
    frame = pd.read_csv(path)
    cols = [c for c in ("name", "kind", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "top5_accuracy",
                        "macro_f1", "mean_error_km", "median_error_km") if c in frame.columns]
    return (f"Holdout test split of `{run_dir.name}` ({path.relative_to(REPO)}):\n\n"
            + frame[cols].to_markdown(index=False, floatfmt=".3f"))


def bench_table() -> str:
    path = REPO / "benchmarks" / "out" / "uci_cv.md"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "_Run `make bench` for the 10-fold CV table._"


def main() -> None:
    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "runs" / "default"
    body = f"{START}\n{run_table(run_dir.resolve())}\n\n{bench_table()}\n{END}"
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S), encoding="utf-8")
    print(body)


if __name__ == "__main__":
    main()
