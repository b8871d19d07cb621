"""The orchestrator's console: one bar over the run's notebooks, the newest kernel log line beside it,
and the time left only where an earlier run of the same params says how long each notebook takes."""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from geomusic_lib.core.rundir import RunDir

#: the bar without tqdm's own rate and ETA (a mean over notebooks that differ a hundredfold)
BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} [{elapsed}]{postfix}"


def earlier_timings(run: RunDir, params: Any) -> dict[str, float]:
    """Seconds per notebook of the run's last invocation, if it ran these same params; else {}."""
    from geomusic_lib.core.manifest import read_manifest

    try:
        manifest = read_manifest(run.path)
    except (FileNotFoundError, ValueError):
        return {}
    return dict(manifest.get("timings_s", {})) if manifest.get("params") == params.to_plain() else {}


def seconds_left(remaining: Sequence[str], earlier: dict[str, float], jobs: int, parallel: Sequence[str]) -> float | None:
    """The earlier run's seconds for the notebooks still to run (those run side by side shared over
    `jobs`), or None when one of them has no earlier time."""
    if not remaining or any(name not in earlier for name in remaining):
        return None
    side_by_side = sum(earlier[n] for n in remaining if n in parallel) / max(1, min(jobs, len(parallel) or 1))
    return sum(earlier[n] for n in remaining if n not in parallel) + side_by_side


def left_label(seconds: float | None) -> str:
    """`notebooks (about 3 min left, as last time)`, or plain `notebooks` when nothing estimates it."""
    if seconds is None:
        return "notebooks"
    shown = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    return f"notebooks (about {shown} left, as last time)"


class NotebookBar:
    """The run's bar: notebooks done out of all, elapsed time, and the time left when it is known."""

    def __init__(self, names: Sequence[str], earlier: dict[str, float], jobs: int, parallel: Sequence[str]):
        from tqdm.auto import tqdm

        self.remaining, self.earlier, self.jobs, self.parallel = list(names), earlier, jobs, list(parallel)
        self.bar = tqdm(total=len(names), desc=self.label(), file=sys.stdout, dynamic_ncols=True, bar_format=BAR_FORMAT)

    def label(self) -> str:
        return left_label(seconds_left(self.remaining, self.earlier, self.jobs, self.parallel))

    def report(self, result: Any) -> None:
        """One line per finished notebook, and the bar moved on."""
        status = "failed" if result.error else "ok"
        self.bar.write(f"  {result.name:<24} {result.seconds:7.1f} s  {status}")
        if result.name in self.remaining:
            self.remaining.remove(result.name)
        self.bar.set_description_str(self.label(), refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class LogFollower:
    """Show, in the console bar, the last progress line of the kernel log written most recently
    (epochs of a training run, files of an extraction), every second, from a background thread."""

    def __init__(self, log_dir: Path, bar: Any, interval: float = 1.0):
        self.log_dir, self.bar, self.interval = Path(log_dir), bar, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            line = latest_progress_line(self.log_dir)
            if line:
                self.bar.set_postfix_str(line[:90], refresh=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def latest_progress_line(log_dir: Path) -> str | None:
    """`<notebook>: <last line>` of the most recently written log (the kernel's own `[IPKernelApp]`
    start-up notices skipped), or None."""
    logs = sorted(Path(log_dir).glob("*.log"), key=lambda p: p.stat().st_mtime) if Path(log_dir).is_dir() else []
    if not logs:
        return None
    with open(logs[-1], "rb") as handle:
        handle.seek(max(0, logs[-1].stat().st_size - 2000))
        tail = handle.read().decode("utf-8", errors="replace")
    parts = [p.strip() for p in tail.replace("\r", "\n").splitlines()
             if p.strip() and not p.startswith("[IPKernelApp]")]
    return f"{logs[-1].stem}: {parts[-1]}" if parts else None


def parallel_label(todo: Sequence[str], jobs: int, n_gpus: int) -> str:
    """What the bar says while model notebooks run side by side: as many at a time as `--jobs` allows."""
    workers = min(jobs, len(todo))
    noun = "notebook" if len(todo) == 1 else "notebooks"
    return f"{len(todo)} {noun}, {workers} at a time" + (f" on {n_gpus} GPUs" if n_gpus > 1 else "")
