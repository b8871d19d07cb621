"""MIRAGE at full scale: the real book (`geomusic run`) on synthetic v1 exports of
10K, 100K and 1M events (`make_mirage_synthetic.py`), measured stage by stage.

Per size and notebook: wall time (the orchestrator's `timings_s` in the run's manifest), peak
resident memory of that notebook's kernel (sampled every 0.5 s with psutil: the kernel is found
by its `GEOMUSIC_PROGRESS_FILE`, which names the notebook), and the run's output sizes. Then the
loader alone: first read from the CSV and a second from the parquet cache (wall, CPU, peak RSS).
Finally, how each stage grows between sizes: the exponent b of time ∝ n^b (1 = linear).

    python benchmarks/bench_mirage_scale.py --sizes 100000 1000000 --jobs 2
    python benchmarks/bench_mirage_scale.py --sizes 10000 --params params/mirage_cpu.yaml
    python benchmarks/bench_mirage_scale.py --sizes 1000000 --loader-only   # load + split only, minutes

Writes `benchmarks/out/mirage_scale.md` (README via update_readme.py) and the committed copy
`benchmarks/results/mirage_scale.md` (with the command, date, machine and load average; the book's
MIRAGE page includes it), and keeps every run under `benchmarks/out/mirage_scale/<size>/`. On a shared machine wall times
include waiting for the CPU: the CPU-seconds column of the loader is the load-independent figure.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
WORK = OUT / "mirage_scale"
RESULTS = REPO / "benchmarks" / "results" / "mirage_scale.md"
TARGETS = {"load_s": 60, "load_gb": 4, "cached_s": 10, "book_min": 60, "html_mb": 20}


def synthetic(events: int, seed: int) -> Path:
    """The size's export, generated once (seeded)."""
    path = OUT / f"mirage_synthetic_{events}.csv"
    if not path.is_file():
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_mirage_synthetic.py"), "--events", str(events),
                        "--seed", str(seed), "--out", str(path)], check=True)
    return path


def write_params(base: Path, events: int, csv: Path, root: Path) -> Path:
    """`base` with this size's export, run name and a class threshold scaled to the number of tracks
    (200 tracks at 1M events, as in mirage.yaml; at least 20) so every size has a similar class count."""
    params = yaml.safe_load(base.read_text(encoding="utf-8"))
    mirage = params["data"]["mirage"]
    mirage.update(path=str(csv), min_tracks_per_class=max(20, round(200 * events / 1_000_000)),
                  cache_dir=str(WORK / "cache"))
    params.update(run_name=f"mirage_{events}", runs_dir=str(root / "runs"))
    path = root / f"params_{events}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


class KernelSampler(threading.Thread):
    """Peak RSS (bytes) of each notebook's kernel under a process, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.peak, self.stop = pid, every, {}, threading.Event()
        self.loads: list[float] = []  # 1-minute load average, every sample

    def run(self) -> None:
        names: dict[int, str] = {}
        while not self.stop.is_set():
            self.loads.append(os.getloadavg()[0])
            try:
                children = psutil.Process(self.root).children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for child in children:
                try:
                    if child.pid not in names:
                        log = child.environ().get("GEOMUSIC_PROGRESS_FILE", "")
                        names[child.pid] = Path(log).stem if log else ""
                    name = names[child.pid]
                    if name:
                        self.peak[name] = max(self.peak.get(name, 0), child.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            time.sleep(self.every)


def run_book(params_file: Path, jobs: int, build: bool) -> tuple[dict[str, float], dict[str, int], float, str, list[float]]:
    """Run the book; (seconds per notebook, peak kernel RSS per notebook, total wall s, status, load averages)."""
    cmd = [sys.executable, "-m", "geomusic_lib", "run", "--params", str(params_file), "--jobs", str(jobs)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd + ([] if build else ["--no-book"]), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    sampler = KernelSampler(proc.pid)
    sampler.start()
    output = proc.communicate()[0]
    sampler.stop.set()
    total = time.perf_counter() - start
    if proc.returncode != 0:
        print(output[-4000:])
    run = yaml.safe_load(params_file.read_text())
    manifest = Path(run["runs_dir"]) / run["run_name"] / "manifest.json"
    timings = json.loads(manifest.read_text()).get("timings_s", {}) if manifest.is_file() else {}
    return timings, sampler.peak, total, ("ok" if proc.returncode == 0 else f"FAILED ({proc.returncode})"), sampler.loads


def measure_loader(params_file: Path) -> dict[str, float]:
    """Load + prepare (notebook 01's work: `load_dataset`, `run_splits`) in a fresh process, twice: from the CSV
    (caches cleared), then from the caches (events, per-track table and split)."""
    code = ("import json,resource,sys,time\nfrom geomusic_lib.core import load_params\n"
            "from geomusic_lib.data import load_dataset, run_splits\n"
            "p=load_params(sys.argv[1]);w,c=time.perf_counter(),time.process_time()\n"
            "t=load_dataset(p);s=run_splits(t,p)\n"
            "print(json.dumps({'wall':time.perf_counter()-w,'cpu':time.process_time()-c,"
            "'rss_gb':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1e6,'tracks':len(t.frame),"
            "'classes':int(t.frame['label'].nunique())}))")
    out = {}
    for cache in (WORK / "cache",):
        for f in [*cache.glob("*.parquet"), *cache.glob("*.npz")] if cache.is_dir() else []:  # events, tracks, split
            f.unlink()
    for label in ("csv", "cached"):
        done = subprocess.run([sys.executable, "-c", code, str(params_file)], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
        out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.is_dir() else float("nan")


def output_sizes(params_file: Path) -> dict[str, float]:
    """MB of the run's data, models, eval, executed notebooks and built HTML."""
    from geomusic_lib.core import RunDir

    p = yaml.safe_load(params_file.read_text())
    run = RunDir(Path(p["runs_dir"]) / p["run_name"])
    return {"data": folder_mb(run.path / "data"), "models": folder_mb(run.path / "models"),
            "eval": folder_mb(run.path / "eval"), "notebooks": folder_mb(run.book_notebooks),
            "html": folder_mb(run.book_html)}


def growth(rows: dict[int, dict], key: str) -> dict[str, str]:
    """Per stage, the exponent b of time ∝ n^b between each pair of consecutive sizes."""
    sizes = sorted(rows)
    stages = sorted({s for n in sizes for s in rows[n][key]})
    out = {}
    for stage in stages:
        parts = []
        for a, b in zip(sizes, sizes[1:]):
            ta, tb = rows[a][key].get(stage), rows[b][key].get(stage)
            parts.append(f"{math.log(tb / ta) / math.log(b / a):.2f}" if ta and tb and ta > 0.5 else "–")
        out[stage] = " / ".join(parts)
    return out


def markdown(rows: dict[int, dict], jobs: int, params: Path) -> str:
    """The report: loader, per-notebook time and memory, output sizes, growth, targets."""
    sizes = sorted(rows)
    head = " | ".join(f"{n:,} events" for n in sizes)
    loads = ", ".join(f"{rows[n]['load']['mean']:.1f} at {n:,} events" for n in sizes if rows[n].get("load"))
    lines = [f"Measured {dt.date.today()} on {os.cpu_count()} CPU cores (mean load average while the book ran: "
             f"{loads or 'not recorded'}), `--jobs {jobs}`, "
             f"params `{params.relative_to(REPO) if params.is_relative_to(REPO) else params}` "
             f"(`python benchmarks/bench_mirage_scale.py --sizes {' '.join(map(str, sizes))} --jobs {jobs}`).", "",
             "#### Loading and preparing (load, majority vote, grouped split; fresh process)", "",
             f"| | {head} |", "|---|" + "---|" * len(sizes)]
    for label, key in (("tracks / classes", None), ("from CSV: wall s (CPU s)", "csv"), ("from CSV: peak GB", "csv"),
                       ("from parquet cache: wall s (CPU s)", "cached")):
        cells = []
        for n in sizes:
            ld = rows[n]["loader"]
            if key is None:
                cells.append(f"{ld['csv']['tracks']:,} / {ld['csv']['classes']}")
            elif "GB" in label:
                cells.append(f"{ld[key]['rss_gb']:.2f}")
            else:
                cells.append(f"{ld[key]['wall']:.1f} ({ld[key]['cpu']:.1f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "#### The book, per notebook: wall s / peak kernel RSS GB", "", f"| notebook | {head} | growth b (time ∝ n^b) |",
              "|---|" + "---|" * (len(sizes) + 1)]
    slope = growth(rows, "timings")
    for stage in sorted({s for n in sizes for s in rows[n]["timings"]}):
        cells = [f"{rows[n]['timings'].get(stage, float('nan')):.0f} / {_gb(rows[n]['rss'].get(stage))}" for n in sizes]
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {slope.get(stage, '–')} |")
    lines.append("| **whole run (wall)** | " + " | ".join(f"{rows[n]['total'] / 60:.1f} min ({rows[n]['status']})" for n in sizes) + " | |")
    lines += ["", "#### Output sizes (MB)", "", f"| | {head} |", "|---|" + "---|" * len(sizes)]
    for part in ("data", "models", "eval", "notebooks", "html"):
        lines.append(f"| {part} | " + " | ".join(f"{rows[n]['sizes'][part]:.1f}" for n in sizes) + " |")
    lines += ["", f"Targets at 1M events: load ≤ {TARGETS['load_s']} s and ≤ {TARGETS['load_gb']} GB, cached ≤ "
              f"{TARGETS['cached_s']} s, whole book ≤ {TARGETS['book_min']} min on 2 cores, HTML ≤ {TARGETS['html_mb']} MB. "
              "b ≈ 1 is linear; b > 1.2 would be worse than n log n (– : stage under 0.5 s or not run)."]
    lines += [f"- {n:,} events: {note}" for n in sizes for note in rows[n].get("notes", [])]
    return "\n".join(lines) + "\n"


def _gb(rss: float | None) -> str:
    """Peak RSS in GB, or a dash when the notebook's memory was not sampled (e.g. re-run alone)."""
    return "–" if not rss or rss != rss else f"{rss / 1e9:.2f}"


def machine() -> str:
    """Cores, memory and accelerator of this machine, in words."""
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f"GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{os.cpu_count()} CPU cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {gpu}"


def results_header(rows: dict[int, dict], argv: list[str]) -> str:
    """The committed copy's header: command, dates, machine, and the load average while the book ran."""
    load = "; ".join(f"{n:,} events: mean {rows[n]['load']['mean']:.1f}, max {rows[n]['load']['max']:.1f}"
                     if rows[n].get("load") else f"{n:,} events: not recorded" for n in sorted(rows))
    dates = sorted({rows[n].get("date", "?") for n in rows})
    return ("<!-- written by benchmarks/bench_mirage_scale.py: rerun it (`make bench`) rather than editing -->\n\n"
            f"- command: `{_command(rows, argv)}`\n- date: {', '.join(dates)}\n"
            f"- machine: {machine()}\n- load average while the book ran (1-minute, sampled every 0.5 s): {load}\n\n")


def _command(rows: dict[int, dict], argv: list[str]) -> str:
    """The command that measured the rows (kept in the JSON), else this invocation's."""
    stored = sorted({rows[n]["command"] for n in rows if rows[n].get("command")})
    return "; ".join(stored) if stored else "python benchmarks/bench_mirage_scale.py " + " ".join(argv)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--params", type=Path, default=REPO / "params" / "mirage_cpu.yaml")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-book", action="store_true", help="run the notebooks but skip jupyter-book build")
    ap.add_argument("--out", type=Path, default=OUT / "mirage_scale.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the reports from mirage_scale.json, run nothing")
    ap.add_argument("--loader-only", action="store_true", help="print the loader's figures (CSV, cached), no book")
    args = ap.parse_args(argv)
    if args.loader_only:
        for events in args.sizes:
            (WORK / str(events)).mkdir(parents=True, exist_ok=True)
            params_file = write_params(args.params.resolve(), events, synthetic(events, args.seed), WORK / str(events))
            print(f"{events:,} events, load average {os.getloadavg()[0]:.1f}:", json.dumps(measure_loader(params_file)))
        return
    results = OUT / "mirage_scale.json"
    rows = {int(k): v for k, v in json.loads(results.read_text()).items()} if results.is_file() else {}
    for events in [] if args.report_only else args.sizes:
        root = WORK / str(events)
        root.mkdir(parents=True, exist_ok=True)
        params_file = write_params(args.params.resolve(), events, synthetic(events, args.seed), root)
        print(f"== {events:,} events: loader", flush=True)
        loader = measure_loader(params_file)
        print(json.dumps(loader), flush=True)
        print(f"== {events:,} events: the book (--jobs {args.jobs})", flush=True)
        timings, rss, total, status, loads = run_book(params_file, args.jobs, not args.no_book)
        rows[events] = {"loader": loader, "timings": timings, "rss": rss, "total": total, "status": status,
                        "sizes": output_sizes(params_file), "date": str(dt.date.today()),
                        "command": " ".join(["python benchmarks/bench_mirage_scale.py", *(argv or sys.argv[1:])]),
                        "load": {"mean": sum(loads) / len(loads), "max": max(loads)} if loads else None}
        results.write_text(json.dumps(rows, indent=1))
        print(json.dumps(rows[events], indent=1), flush=True)
    if not rows:
        raise SystemExit(f"{results}: no measurement yet. Run without --report-only first.")
    text = markdown({n: rows[n] for n in sorted(rows)}, args.jobs, args.params.resolve())
    from geomusic_lib.core.manifest import MADE_AT_STAMP, made_at

    args.out.write_text(MADE_AT_STAMP.format(made_at(REPO)) + "\n" + text, encoding="utf-8")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(results_header(rows, argv if argv is not None else sys.argv[1:]) + text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
