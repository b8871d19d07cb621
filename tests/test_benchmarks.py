"""Benchmarks that cannot rot: every script in benchmarks/ imports and answers `--help`, and the ones
with a mode that finishes in seconds run it (a move of the library breaks this test, not a user's run)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))

# One child Python runs every script as `__main__` with the given arguments (torch is imported once).
CHILD = """
import json, runpy, sys, traceback
outcome = {}
for script, argv in json.loads(sys.argv[1]):
    sys.argv = [script, *argv]
    try:
        runpy.run_path(script, run_name="__main__")
        outcome[f"{script} {argv}"] = "ok"
    except SystemExit as exit:
        outcome[f"{script} {argv}"] = "ok" if exit.code in (0, None) else f"exit {exit.code}"
    except BaseException:
        outcome[f"{script} {argv}"] = traceback.format_exc(limit=3)
print("OUTCOME", json.dumps(outcome))
"""


def run_scripts(calls: list[tuple[Path, list[str]]], cwd: Path) -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([(str(s), a) for s, a in calls])], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    line = next((l for l in done.stdout.splitlines() if l.startswith("OUTCOME ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(line.removeprefix("OUTCOME "))


def test_every_benchmark_imports_and_answers_help(tmp_path):
    assert len(SCRIPTS) >= 10
    outcome = run_scripts([(script, ["--help"]) for script in SCRIPTS], tmp_path)
    assert {k: v for k, v in outcome.items() if v != "ok"} == {}
    assert len(outcome) == len(SCRIPTS)


def test_the_quick_benchmark_modes_run(tmp_path):
    """The modes that take seconds: a small synthetic MIRAGE export, and the weight of a one-page site."""
    bench = ROOT / "benchmarks"
    events = tmp_path / "mirage_2000.csv"
    site = tmp_path / "html"
    site.mkdir()
    (site / "index.html").write_text('<html><script src="a.js"></script><body>hi</body></html>', encoding="utf-8")
    (site / "a.js").write_text("x" * 4096, encoding="utf-8")
    calls = [(bench / "make_mirage_synthetic.py", ["--events", "2000", "--out", str(events)]),
             (bench / "page_weight.py", [str(site)])]
    outcome = run_scripts(calls, tmp_path)
    assert set(outcome.values()) == {"ok"}, outcome
    assert sum(1 for _ in events.open(encoding="utf-8")) == 2001
