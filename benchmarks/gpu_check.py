"""One-shot GPU proof (issue #25): the trainer's CUDA + AMP path on every network, `device: auto`,
bagged members in parallel and the 100K-event MIRAGE book over the visible GPUs, in under 8 minutes.

    bash benchmarks/gpu_check.sh                        # everything, from the repository root
    bash benchmarks/gpu_check.sh --steps amp,device_auto --budget-s 120
    python benchmarks/gpu_check.py --dry-run            # the plan: steps, what each runs, its budget
    python benchmarks/gpu_check.py --expect cpu --steps amp_fcnn,bagging   # self-test of the script on a CPU

Every step fails loudly on a silent CPU fallback: a forward pre-hook on every module sees where each
batch and parameter lives while the trainer runs, and the checkpoints written by spawned processes
and notebook kernels are read back for the device of their weights and for the AMP grad scaler.
Writes `benchmarks/results/gpu_check_<date>.md` and `.json`; exit 0 = pass, 1 = a check failed,
2 = no GPU (or missing packages), 3 = steps skipped for lack of time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
NETWORKS = ("fcnn", "tabm", "cnn", "rnn", "attention")
DEFAULT_BUDGET_S = 480.0
TOLERANCE = 0.02  # max |p_amp - p_fp32| over every test row and class
REPORT_RESERVE_S = 5.0  # kept back from the book's timeout for the report
CORE_MODULES = ("torch", "numpy", "pandas", "sklearn", "scipy", "pydantic", "yaml", "tqdm", "plotly", "pyarrow",
                "tabm", "rtdl_num_embeddings", "psutil")
BOOK_MODULES = ("papermill", "nbformat", "nbclient", "ipykernel", "IPython", "shap")


class CheckFailure(RuntimeError):
    """A check that did not hold (a CPU fallback, a tolerance, a failed notebook): the step fails."""


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Step:
    """One step of the check: its budget (seconds on one H200) and what it runs."""

    name: str
    budget_s: float
    what: str
    run: Callable[["Context", dict], None]
    min_start_s: float | None = None  # least time left to start it (None: its whole budget); it is then cut off

    @property
    def needs_s(self) -> float:
        return self.budget_s if self.min_start_s is None else self.min_start_s


@dataclass
class Context:
    """What the steps share: options, the expected device, the work folder and the clock."""

    args: argparse.Namespace
    expect: str  # "cuda" (the proof) or "cpu" (a self-test of this script)
    work: Path
    deadline: float
    clock: Callable[[], float] = time.perf_counter
    shared: dict[str, Any] = field(default_factory=dict)

    def time_left(self) -> float:
        return self.deadline - self.clock()


def all_steps() -> list[Step]:
    """Every step in run order; the budgets add up to the default total of 480 s."""
    return [
        Step("env", 15, "torch, CUDA build, cuDNN, driver, the GPUs, missing packages; a first CUDA kernel", env_step),
        *[Step(f"amp_{n}", 20, f"{n}: --epochs on UCI, `device: auto` + `train.amp`, every module call hooked; "
               "fp16 autocast vs fp32 probabilities of the best weights", network_step(n)) for n in NETWORKS],
        Step("device_auto", 10, "`device: auto` resolves to CUDA (resolve_device, Predictor)", device_auto_step),
        Step("bagging", 30, "fcnn bag, `train.bagging.folds: 5`, `jobs: auto` (= visible GPUs)", bagging_step("auto")),
        Step("bagging_spawn", 60, "the same bag with `jobs: --spawn-jobs` spawned processes, member j on GPU j mod n",
             bagging_step("spawn")),
        Step("mirage_book", 265, "synthetic MIRAGE export (--mirage-events, 100K), then `geomusic run --jobs "
             "--book-jobs --no-book` on mirage_cpu.yaml with `device: auto` + AMP", mirage_step, min_start_s=120),
    ]


def select_steps(spec: str | None, steps: Sequence[Step]) -> list[Step]:
    """The steps named in `spec` (comma-separated names or prefixes such as `amp`), in run order;
    `env` always runs first (the report needs it)."""
    if not spec or spec.strip() == "all":
        return list(steps)
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    chosen: set[str] = {"env"}
    for want in wanted:
        hits = [s.name for s in steps if s.name == want or s.name.startswith(want + "_")]
        if not hits:
            raise SystemExit(f"--steps {want}: no such step. Choose from: {', '.join(s.name for s in steps)}")
        chosen.update(hits)
    return [s for s in steps if s.name in chosen]


def plan_lines(steps: Sequence[Step], budget_s: float) -> list[str]:
    """The dry run's listing: each step, its budget and what it does; whether the plan fits."""
    total = sum(s.budget_s for s in steps)
    lines = [f"{i:2d}. {s.name:<14} {s.budget_s:5.0f} s  {s.what}" for i, s in enumerate(steps, 1)]
    lines.append(f"    {'total':<14} {total:5.0f} s  of --budget-s {budget_s:.0f} s")
    if total > budget_s:
        lines.append(f"warning: the steps' budgets ({total:.0f} s) exceed --budget-s ({budget_s:.0f} s): "
                     "the last steps may be skipped")
    return lines


# --------------------------------------------------------------------------- running the plan
class GpuMemory:
    """Peak memory torch allocated on GPU 0 in this process during a step (None on a CPU)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch if torch.cuda.is_available() else None

    def reset(self) -> None:
        if self.torch is not None:
            self.torch.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> float | None:
        return None if self.torch is None else round(self.torch.cuda.max_memory_allocated() / 2**20, 1)


def run_step(step: Step, ctx: Context, memory: GpuMemory | None = None) -> dict[str, Any]:
    """Run one step; its record: status (ok, slow = over budget, FAILED), seconds, peak GPU memory, data."""
    data: dict[str, Any] = {}
    status, message = "ok", ""
    start = ctx.clock()
    if memory is not None:
        memory.reset()
    try:
        step.run(ctx, data)
    except CheckFailure as err:
        status, message = "FAILED", str(err)
    except Exception as err:  # noqa: BLE001 - any error fails the step, the next steps still run
        status, message = "FAILED", f"{type(err).__name__}: {err}"
        data["traceback"] = traceback.format_exc(limit=8)
    seconds = ctx.clock() - start
    if status == "ok" and seconds > step.budget_s:
        status, message = "slow", f"took {seconds:.1f} s, over its budget of {step.budget_s:.0f} s"
    return {"name": step.name, "what": step.what, "status": status, "seconds": round(seconds, 2),
            "budget_s": step.budget_s, "peak_gpu_mib": None if memory is None else memory.peak_mib(),
            "message": message, "data": data}


def skipped(step: Step, why: str) -> dict[str, Any]:
    return {"name": step.name, "what": step.what, "status": "skipped", "seconds": 0.0, "budget_s": step.budget_s,
            "peak_gpu_mib": None, "message": why, "data": {}}


def run_steps(steps: Sequence[Step], ctx: Context, memory_factory: Callable[[], GpuMemory | None] = lambda: None,
              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run `steps` in order within the total budget: a step starts only with its budget (or its
    `min_start_s`) left; after a failed `env` (no GPU, missing packages) nothing else runs."""
    results: list[dict[str, Any]] = []
    memory: GpuMemory | None = None
    abort = ""
    for step in steps:
        left = ctx.time_left()
        if abort or left < step.needs_s:
            why = abort or f"not started: {max(left, 0):.0f} s of the total budget left, it needs {step.needs_s:.0f} s"
            results.append(skipped(step, why))
        else:
            log(f"== {step.name} (budget {step.budget_s:.0f} s, {left:.0f} s left): {step.what}")
            results.append(run_step(step, ctx, memory))
            done = results[-1]
            log(f"   {step.name}: {done['status']} in {done['seconds']:.1f} s {done['message']}".rstrip())
        if step.name == "env":
            if results[-1]["status"] == "FAILED":
                abort = "not started: env failed (see its note)"
            elif not abort:
                memory = memory_factory()
    return results


def verdict(results: Sequence[dict[str, Any]], strict_budget: bool = False) -> tuple[str, int]:
    """PASS (0), FAIL (1; 2 when env failed: no GPU or missing packages) or INCOMPLETE (3: steps skipped)."""
    statuses = {r["name"]: r["status"] for r in results}
    if statuses.get("env") == "FAILED":
        return "FAIL", 2
    if "FAILED" in statuses.values() or (strict_budget and "slow" in statuses.values()):
        return "FAIL", 1
    if "skipped" in statuses.values():
        return "INCOMPLETE", 3
    return "PASS", 0


# --------------------------------------------------------------------------- fallback detection
def _tensors_of(value: Any, label: str) -> Iterator[tuple[str, Any]]:
    """(label, tensor) of every tensor in a forward call's argument (a PackedSequence: its data only,
    as its batch sizes live on the CPU by design)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(value, PackedSequence):
        yield label, value.data
    elif isinstance(value, torch.Tensor):
        yield label, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors_of(item, f"{label}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors_of(item, f"{label}[{key!r}]")


class DeviceProbe:
    """While active, a forward pre-hook on every module records where its inputs and own parameters
    and buffers are, and whether autocast is on in training mode; any tensor off `expect` is a fallback."""

    def __init__(self, expect: str, keep: int = 5) -> None:
        self.expect, self.keep = expect, keep
        self.calls = self.training_calls = self.autocast_training_calls = self.offending_calls = 0
        self.examples: list[str] = []
        self._handle: Any = None

    def see(self, module: Any, args: tuple) -> None:
        """The hook: one module call with its positional arguments."""
        self.calls += 1
        if module.training:
            self.training_calls += 1
            self.autocast_training_calls += int(_autocast_on(self.expect))
        own = [*((f"parameter {n}", p) for n, p in module.named_parameters(recurse=False)),
               *((f"buffer {n}", b) for n, b in module.named_buffers(recurse=False))]
        bad = [f"{label} on {t.device}" for label, t in [*_tensors_of(list(args), "input"), *own]
               if t.device.type != self.expect]
        if bad:
            self.offending_calls += 1
            if len(self.examples) < self.keep:
                self.examples.append(f"{type(module).__name__}: {', '.join(bad[:3])}")

    def __enter__(self) -> "DeviceProbe":
        from torch.nn.modules.module import register_module_forward_pre_hook

        self._handle = register_module_forward_pre_hook(lambda module, args: self.see(module, args))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()

    def summary(self) -> dict[str, Any]:
        return {"expect": self.expect, "calls": self.calls, "training_calls": self.training_calls,
                "autocast_training_calls": self.autocast_training_calls, "offending_calls": self.offending_calls,
                "examples": self.examples}

    def problems(self, need_autocast: bool, need_training: bool = True) -> list[str]:
        """What the probe saw that breaks the proof (empty: every call was on `expect`)."""
        out = []
        if self.calls == 0 or (need_training and self.training_calls == 0):
            out.append("the probe saw no (training) forward pass: nothing was checked")
        if self.offending_calls:
            out.append(f"CPU FALLBACK: {self.offending_calls} of {self.calls} module calls had tensors off "
                       f"{self.expect}, e.g. {'; '.join(self.examples)}")
        if need_autocast and self.training_calls and not self.autocast_training_calls:
            out.append("AMP was not active: no training forward pass ran under autocast")
        return out


def _autocast_on(device_type: str) -> bool:
    import torch

    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: CUDA only
        return device_type == "cuda" and bool(torch.is_autocast_enabled())


def checkpoint_devices(path: Path) -> dict[str, Any]:
    """Where a trainer checkpoint's weights and optimiser state were when saved (loaded back without
    moving them), and whether it holds an AMP grad scaler (the trainer keeps one only with AMP on CUDA)."""
    import torch

    ckpt = torch.load(path, map_location=None, weights_only=True)
    weights = {str(t.device) for t in ckpt["state_dict"].values() if isinstance(t, torch.Tensor)}
    optim = {str(t.device) for state in ckpt.get("optimizer_state", {}).get("state", {}).values()
             for t in state.values() if isinstance(t, torch.Tensor) and t.dim() > 0}
    return {"path": str(path), "weights": sorted(weights), "optimizer": sorted(optim),
            "amp_scaler": bool(ckpt.get("scaler_state")), "epoch": int(ckpt.get("epoch", 0))}


def checkpoint_problems(info: dict[str, Any], expect: str, need_amp: bool) -> list[str]:
    """`expect` is a device type (`cuda`) or an exact device (`cuda:1`)."""
    def on(device: str) -> bool:
        return device == expect if ":" in expect else device.split(":")[0] == expect

    out = []
    off = [d for d in [*info["weights"], *info["optimizer"]] if not on(d)]
    if off or not info["weights"]:
        out.append(f"CPU FALLBACK: {info['path']} holds weights on {info['weights']} and optimiser state on "
                   f"{info['optimizer']}, expected {expect}")
    if need_amp and not info["amp_scaler"]:
        out.append(f"{info['path']}: no AMP grad scaler state, so training ran without AMP on CUDA")
    return out


# --------------------------------------------------------------------------- AMP vs fp32
def compare_predictions(p_fp32: Any, p_amp: Any, tol: float = TOLERANCE) -> dict[str, Any]:
    """Agreement of two probability matrices of the same rows: max and mean |Δp|, top-1 agreement and
    where the flips are (a flip needs a top-2 margin ≤ 2·max |Δp|); ok when max |Δp| ≤ tol."""
    import numpy as np

    a, b = np.asarray(p_fp32, dtype=float), np.asarray(p_amp, dtype=float)
    if a.shape != b.shape or not len(a):
        raise CheckFailure(f"AMP and fp32 probabilities differ in shape: {a.shape} vs {b.shape}")
    diff = np.abs(a - b)
    top2 = np.sort(a, axis=1)[:, -2:]
    flips = a.argmax(1) != b.argmax(1)
    return {"rows": int(len(a)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "top1_agreement": float(1 - flips.mean()), "flips": int(flips.sum()),
            "max_flip_margin": float((top2[:, 1] - top2[:, 0])[flips].max()) if flips.any() else 0.0,
            "finite": bool(np.isfinite(b).all()), "tolerance": tol,
            "ok": bool(np.isfinite(b).all() and diff.max() <= tol)}


def probabilities(model: Any, batch: Any, rows: Any, device: Any, amp: bool) -> Any:
    """Test-row probabilities in fp32, or under autocast (fp16 on CUDA, bf16 on a CPU) with `amp`."""
    import torch

    from geomusic_lib.predict.inference import batch_probabilities

    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    with torch.autocast(device_type=device.type, dtype=dtype, enabled=amp):
        return batch_probabilities(model, batch, rows, 1024, device)


# --------------------------------------------------------------------------- the training steps
def uci_data(ctx: Context) -> tuple[Any, list[Any]]:
    """The embedded UCI table and its holdout split (loaded once)."""
    if "uci" not in ctx.shared:
        from geomusic_lib.data.store import load_dataset, run_splits

        params = uci_params(ctx, epochs=1)
        table = load_dataset(params)
        ctx.shared["uci"] = (table, run_splits(table, params))
    return ctx.shared["uci"]


def uci_params(ctx: Context, epochs: int, **train: Any) -> Any:
    """params/default.yaml on `device: auto` with AMP, `epochs` epochs, no early stop before them and one
    model per split (unless `bagging` is given)."""
    from geomusic_lib.core import load_params

    return load_params(REPO / "params" / "default.yaml", {
        "run_name": "gpu_check", "runs_dir": str(ctx.work / "runs"), "device": "auto",
        "train": {"epochs": epochs, "patience": epochs + 1, "amp": True, "bagging": {"folds": 1}, **train}})


def epoch_times(folder: Path) -> dict[str, Any]:
    """Seconds of the first epoch (warm-up included) and the median of the others, from history.csv."""
    import numpy as np
    import pandas as pd

    from geomusic_lib.core.rundir import history_path

    seconds = pd.read_csv(history_path(folder))["seconds"].to_numpy(float)
    return {"epochs": int(len(seconds)), "first_epoch_s": float(seconds[0]),
            "s_per_epoch": float(np.median(seconds[1:] if len(seconds) > 1 else seconds))}


def network_step(name: str) -> Callable[[Context, dict], None]:
    def run(ctx: Context, data: dict) -> None:
        """Train `name` hooked, check its checkpoint, compare AMP and fp32 predictions of its best weights."""
        from geomusic_lib.core.rundir import checkpoint_path
        from geomusic_lib.training.trainer import train_model

        table, splits = uci_data(ctx)
        params = uci_params(ctx, ctx.args.epochs)
        probe = DeviceProbe(ctx.expect)
        start = time.perf_counter()
        with probe:
            result = train_model(name, table, splits, params, ctx.work / "train" / name, progress=False)
        folder = result.folds[0].checkpoint.parent
        data.update(network=name, train_s=round(time.perf_counter() - start, 2), n_parameters=result.n_parameters,
                    test_accuracy=result.test_accuracy, **epoch_times(folder), probe=probe.summary())
        data["checkpoint"] = checkpoint_devices(checkpoint_path(folder, "last"))
        data["amp"] = amp_agreement(name, table, splits[0], params, result.folds[0].checkpoint, ctx)
        ctx.shared.setdefault("checkpoint", result.folds[0].checkpoint)
        problems = [*probe.problems(need_autocast=ctx.expect == "cuda"),
                    *checkpoint_problems(data["checkpoint"], ctx.expect, need_amp=ctx.expect == "cuda")]
        if ctx.expect == "cuda" and not data["amp"]["ok"]:
            problems.append(f"AMP vs fp32: max |Δp| {data['amp']['max_abs_diff']:.4f} > tolerance {ctx.args.tol}")
        if problems:
            raise CheckFailure("; ".join(problems))
    return run


def amp_agreement(name: str, table: Any, split: Any, params: Any, best: Path, ctx: Context) -> dict[str, Any]:
    """fp32 vs autocast probabilities of the same best weights on the split's test rows."""
    from geomusic_lib.models.checkpoint import load_checkpoint, model_from_checkpoint
    from geomusic_lib.predict.inference import resolve_device
    from geomusic_lib.training.setup import model_view, prepare_inputs

    device = resolve_device(params.device)
    model = model_from_checkpoint(load_checkpoint(best, map_location=device), device)
    batch = prepare_inputs(table, split, model_view(name, params, table.grid_shape), None)[0]
    p32 = probabilities(model, batch, split.test, device, amp=False)
    out = compare_predictions(p32, probabilities(model, batch, split.test, device, amp=True), ctx.args.tol)
    if name == "fcnn":
        ctx.shared["fcnn_test"] = (batch.index(split.test), p32)
    return {**out, "autocast_dtype": "float16" if device.type == "cuda" else "bfloat16 (CPU self-test)"}


def device_auto_step(ctx: Context, data: dict) -> None:
    """`device: auto` is the default and resolves to CUDA; the Predictor on `auto` loads onto it and
    gives the trainer's fp32 probabilities."""
    import numpy as np
    import torch

    from geomusic_lib.core import params_from_dict
    from geomusic_lib.predict import Predictor
    from geomusic_lib.predict.inference import resolve_device

    chosen = resolve_device("auto")
    data.update(default_device=params_from_dict({}).device, auto_resolves_to=str(chosen),
                cuda_available=torch.cuda.is_available())
    problems = [] if chosen.type == ctx.expect else [
        f"CPU FALLBACK: device: auto resolved to {chosen}, expected {ctx.expect}"]
    best = ctx.shared.get("checkpoint")
    if best is None:
        data["predictor"] = "not checked: no amp_* step ran before this one"
    else:
        predictor = Predictor.from_checkpoint(best, device="auto")
        where = {str(p.device) for p in predictor.model.parameters()}
        data["predictor"] = {"device": str(predictor.device), "weights": sorted(where)}
        if predictor.device.type != ctx.expect or any(not d.startswith(ctx.expect) for d in where):
            problems.append(f"CPU FALLBACK: Predictor(device='auto') put the model on {sorted(where)}")
        if "fcnn_test" in ctx.shared:
            batch, p32 = ctx.shared["fcnn_test"]
            data["predictor"]["max_abs_diff_vs_trainer"] = float(np.abs(predictor.predict_proba(batch) - p32).max())
    if problems:
        raise CheckFailure("; ".join(problems))


def bagging_step(mode: str) -> Callable[[Context, dict], None]:
    def run(ctx: Context, data: dict) -> None:
        """A bag of 5 fcnn members: `jobs: auto`, or `--spawn-jobs` spawned processes; each member's
        checkpoint must be on its GPU (j mod n) with AMP."""
        import torch

        from geomusic_lib.core.rundir import fold_dir
        from geomusic_lib.predict.inference import resolve_device
        from geomusic_lib.training.bagging import bag_jobs
        from geomusic_lib.training.trainer import train_model

        table, splits = uci_data(ctx)
        jobs = "auto" if mode == "auto" else ctx.args.spawn_jobs
        params = uci_params(ctx, ctx.args.bag_epochs, bagging={"folds": ctx.args.bag_folds, "jobs": jobs})
        device = resolve_device(params.device)
        n_gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        resolved = bag_jobs(jobs, ctx.args.bag_folds, device)
        data.update(folds=ctx.args.bag_folds, jobs=jobs, jobs_resolved=resolved, spawned=resolved > 1, gpus=n_gpus)
        out = ctx.work / "train" / f"bag_{mode}"
        probe = DeviceProbe(ctx.expect)
        start = time.perf_counter()
        with probe:
            train_model("fcnn", table, splits, params, out, progress=False)
        data.update(train_s=round(time.perf_counter() - start, 2), probe=probe.summary())
        data["members"] = member_devices(fold_dir(out, splits[0].fold), ctx.args.bag_folds, n_gpus, ctx.expect)
        problems = probe.problems(need_autocast=ctx.expect == "cuda" and resolved == 1, need_training=resolved == 1)
        problems += [p for m in data["members"] for p in m["problems"]]
        if mode == "spawn" and resolved < 2:
            problems.append(f"the spawned path did not run: bagging.jobs {jobs} resolved to {resolved} process")
        if problems:
            raise CheckFailure("; ".join(problems))
    return run


def member_devices(folder: Path, k: int, n_gpus: int, expect: str) -> list[dict[str, Any]]:
    """Each member's checkpoint: where its weights are against where they should be (GPU j mod n)."""
    from geomusic_lib.core.rundir import bag_member_dir, checkpoint_path

    out = []
    for j in range(k):
        want = "cpu" if expect == "cpu" else f"cuda:{j % n_gpus}" if n_gpus > 1 else "cuda:0"
        info = checkpoint_devices(checkpoint_path(bag_member_dir(folder, j), "last"))
        out.append({"member": j, "expected": want, "weights": info["weights"], "amp_scaler": info["amp_scaler"],
                    "epoch": info["epoch"], "problems": checkpoint_problems(info, want, need_amp=expect == "cuda")})
    return out


# --------------------------------------------------------------------------- env
def missing_modules(names: Sequence[str]) -> list[str]:
    """The importable-module names among `names` that this Python cannot find."""
    return [n for n in names if importlib.util.find_spec(n) is None]


def nvidia_smi(*query: str) -> str | None:
    """`nvidia-smi <query>` output, or None where it is missing or fails."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi", *query], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def env_step(ctx: Context, data: dict) -> None:
    """Versions, GPUs and packages; a first CUDA kernel (context creation is timed here, not in a step)."""
    missing = missing_modules(CORE_MODULES)
    data.update(python=platform.python_version(), cpu_cores=os.cpu_count(), missing_modules=missing,
                missing_book_modules=missing_modules(BOOK_MODULES))
    if missing:
        raise CheckFailure(f"missing Python packages {missing}: run `make install`, or carry wheels in .whl/ "
                           "(benchmarks/README.md, GPU check)")
    import torch

    data.update(torch=torch.__version__, cuda_build=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                cuda_available=torch.cuda.is_available(), gpus=[], driver=None)
    smi = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    data["driver"] = smi.strip().splitlines()[0] if smi else None
    if ctx.expect == "cuda" and not torch.cuda.is_available():
        raise CheckFailure(f"no CUDA GPU visible: torch {torch.__version__} (built for CUDA {torch.version.cuda}) "
                           f"reports torch.cuda.is_available() = False; CUDA_VISIBLE_DEVICES="
                           f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}")
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        prop = torch.cuda.get_device_properties(i)
        data["gpus"].append({"index": i, "name": prop.name, "memory_gib": round(prop.total_memory / 2**30, 1),
                             "capability": f"{prop.major}.{prop.minor}", "multiprocessors": prop.multi_processor_count})
    start = time.perf_counter()
    x = torch.randn(1024, 1024, device=ctx.expect)
    float((x @ x).sum())
    data["first_kernel_s"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    import geomusic_lib.training  # noqa: F401  (the import cost, once)

    data["import_library_s"] = round(time.perf_counter() - start, 2)


# --------------------------------------------------------------------------- the MIRAGE book
def mirage_params(work: Path, csv: Path, events: int) -> tuple[Path, Path, list[str]]:
    """params/mirage_cpu.yaml (the book's MIRAGE settings) on `device: auto` with AMP, this export, a
    fresh run folder and the class threshold `bench_mirage_scale.py` uses; (file, run folder, models)."""
    import yaml

    params = yaml.safe_load((REPO / "params" / "mirage_cpu.yaml").read_text(encoding="utf-8"))
    params["data"]["mirage"].update(path=str(csv), cache_dir=str(work / "mirage_cache"),
                                    min_tracks_per_class=max(20, round(200 * events / 1_000_000)))
    params.update(run_name=f"gpu_check_mirage_{events}", runs_dir=str(work / "runs"), device="auto")
    params["train"]["amp"] = True
    path = work / f"params_mirage_{events}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path, work / "runs" / params["run_name"], list(params["models"])


def synthetic_export(work: Path, events: int) -> Path:
    """The seeded synthetic export (`make_mirage_synthetic.py`), made once per size, always from the
    committed station sample (a GPU machine has no ../shared), so every machine gets the same file."""
    path = work / f"mirage_synthetic_{events}.csv"
    if not path.is_file():
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_mirage_synthetic.py"), "--events",
                        str(events), "--seed", "0", "--shared", str(work / "no_shared"), "--out", str(path)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return path


def parse_compute_apps(text: str) -> list[tuple[int, str, float]]:
    """(pid, GPU uuid, MiB) rows of `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory
    --format=csv,noheader,nounits`; other lines are ignored."""
    rows = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit():
            try:
                rows.append((int(parts[0]), parts[1], float(parts[2])))
            except ValueError:
                continue
    return rows


def attribute(apps: Sequence[tuple[int, str, float]], names: dict[int, str], gpu_index: dict[str, int],
              seen: dict[str, dict[str, Any]]) -> None:
    """Fold one sample into `seen`: per notebook (its kernel's pid; `other` when unknown) the GPUs it used
    and its peak MiB."""
    for pid, uuid, mib in apps:
        entry = seen.setdefault(names.get(pid, "other"), {"gpus": [], "peak_mib": 0.0})
        gpu = gpu_index.get(uuid, uuid)
        if gpu not in entry["gpus"]:
            entry["gpus"].append(gpu)
        entry["peak_mib"] = max(entry["peak_mib"], mib)


class GpuSampler(threading.Thread):
    """Every second, which notebook kernel (found under `root_pid` by its GEOMUSIC_PROGRESS_FILE) holds
    memory on which GPU, from nvidia-smi; `available` is False without nvidia-smi."""

    def __init__(self, root_pid: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.stop, self.available = root_pid, every, threading.Event(), True
        self.seen: dict[str, dict[str, Any]] = {}
        self.names: dict[int, str] = {}

    def _kernel_names(self) -> None:
        import psutil

        try:
            children = psutil.Process(self.root).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            if child.pid not in self.names:
                try:
                    log = child.environ().get("GEOMUSIC_PROGRESS_FILE", "")
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.names[child.pid] = Path(log).stem if log else "orchestrator"

    def run(self) -> None:
        listing = nvidia_smi("--query-gpu=index,uuid", "--format=csv,noheader")
        if listing is None:
            self.available = False
            return
        index = {u.strip(): int(i) for i, u in (line.split(",", 1) for line in listing.splitlines() if "," in line)}
        while not self.stop.is_set():
            self._kernel_names()
            text = nvidia_smi("--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits")
            attribute(parse_compute_apps(text or ""), self.names, index, self.seen)
            self.stop.wait(self.every)


def stop_group(proc: subprocess.Popen) -> None:
    """End the book's process group (the orchestrator and its kernels), politely first."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_book(params_file: Path, jobs: int, timeout_s: float, log_path: Path) -> dict[str, Any]:
    """`geomusic run --params … --jobs … --no-book` in its own process group, cut off after `timeout_s`."""
    cmd = [sys.executable, "-m", "geomusic_lib", "run", "--params", str(params_file), "--jobs", str(jobs), "--no-book"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start, timed_out = time.perf_counter(), False
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        sampler = GpuSampler(proc.pid)
        sampler.start()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_group(proc)
        finally:
            sampler.stop.set()
            sampler.join(timeout=5)
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
    return {"command": " ".join(cmd[1:]), "returncode": proc.returncode, "timed_out": timed_out,
            "seconds": round(time.perf_counter() - start, 1), "gpu_by_notebook": sampler.seen if sampler.available
            else "nvidia-smi not available", "log": str(log_path), "log_tail": tail}


def mirage_step(ctx: Context, data: dict) -> None:
    """The 100K-event book: every notebook, the four networks' checkpoints on CUDA with AMP."""
    from geomusic_lib.core.rundir import RunDir

    missing = missing_modules(BOOK_MODULES)
    if missing:
        raise CheckFailure(f"the book needs {missing}: `make install` (the book and interpret extras)")
    events = ctx.args.mirage_events
    start = time.perf_counter()
    csv = synthetic_export(ctx.work, events)
    params_file, run_path, models = mirage_params(ctx.work, csv, events)
    data.update(events=events, synthetic_s=round(time.perf_counter() - start, 1), jobs=ctx.args.book_jobs)
    book = run_book(params_file, ctx.args.book_jobs, max(ctx.time_left() - REPORT_RESERVE_S, 1.0),
                    ctx.work / "mirage_book.log")
    data["book"] = book
    run = RunDir(run_path)
    if run.meta.is_file():
        meta = json.loads(run.meta.read_text(encoding="utf-8"))
        data.update(tracks=meta.get("n_tracks"), classes=meta.get("n_classes"))
    if run.manifest.is_file():
        data["notebooks_s"] = json.loads(run.manifest.read_text(encoding="utf-8")).get("timings_s", {})
    problems = [f"the book was cut off after {book['seconds']:.0f} s (the total budget)"] if book["timed_out"] else []
    if book["returncode"] not in (0, None) and not book["timed_out"]:
        problems.append(f"geomusic run exited {book['returncode']}: {' | '.join(book['log_tail'][-4:])}")
    data["models"] = {}
    for model in models:
        path = run.checkpoint(model, kind="last")
        info = checkpoint_devices(path) if path.is_file() else {"path": str(path), "weights": [], "optimizer": [],
                                                                 "amp_scaler": False, "epoch": 0}
        data["models"][model] = info
        problems += checkpoint_problems(info, ctx.expect, need_amp=ctx.expect == "cuda")
    if problems:
        raise CheckFailure("; ".join(problems))


# --------------------------------------------------------------------------- the report
HOW_TO_READ = """\
- **Verdict**: PASS = every step ran and held; FAIL = a check failed (the step's note says which); INCOMPLETE =
  steps were skipped because the total budget ran out. Exit codes: 0, 1 (2: no GPU or missing packages), 3.
- **CPU fallback** is checked three ways: a forward pre-hook on every module (the `probe` columns: module calls
  whose inputs, parameters and buffers were all on CUDA, and training calls under autocast); the weights and
  optimiser state of each checkpoint, loaded back where they were saved; and the AMP grad scaler, which the
  trainer keeps only when it trains with AMP on CUDA. Spawned bag members and notebook kernels are checked by
  their checkpoints.
- **AMP vs fp32**: the best checkpoint's test-row probabilities with fp16 autocast against fp32, same weights. The
  check is max |Δp| ≤ tolerance; a top-1 flip can only happen where the fp32 top-2 margin is ≤ 2·max |Δp|.
- **Times** are wall seconds on this machine; the first epoch includes CUDA/cuDNN warm-up. Peak GPU MiB is
  `torch.cuda.max_memory_allocated` in this process (spawned members and notebook kernels: nvidia-smi's
  per-process memory, which includes each CUDA context, about 500 MiB).
- A step over its budget is marked `slow` (a failure only with `--strict-budget`)."""


def git_commit() -> str:
    """`commit 1a2b3c4d5e` (with uncommitted changes), or `unknown` outside git."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"commit {head}" + (" with uncommitted changes" if dirty else "") if head else "unknown"


def _fmt(value: Any, spec: str = ".1f", none: str = "–") -> str:
    """A number in `spec` (a whole number with thousands separators), else the value as text."""
    if value is None or value == "":
        return none
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return format(value, spec) if isinstance(value, float) else str(value)


def _data(results: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    return next((r["data"] for r in results if r["name"] == name), {})


def header_lines(report: dict[str, Any]) -> list[str]:
    """Title, verdict and the machine: GPUs, torch / CUDA / cuDNN / driver, Python, cores."""
    env = _data(report["steps"], "env")
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB, sm {g['capability']})" for g in env.get("gpus", [])) or "none"
    mode = "" if report["expect"] == "cuda" else " — CPU SELF-TEST of the script, not a GPU proof"
    return [f"# GPU check {report['date']}: {report['verdict']}{mode}", "",
            f"- command: `{report['command']}`", f"- code: {report['commit']}",
            f"- GPUs: {gpus}; driver {_fmt(env.get('driver'))}",
            f"- torch {_fmt(env.get('torch'))}, CUDA build {_fmt(env.get('cuda_build'))}, "
            f"cuDNN {_fmt(env.get('cudnn'))}, "
            f"Python {_fmt(env.get('python'))}, {_fmt(env.get('cpu_cores'))} CPU cores",
            f"- wall {report['total_s']:.0f} s of the {report['budget_s']:.0f} s budget; AMP tolerance max |Δp| ≤ "
            f"{report['tolerance']}", ""]


def steps_table(results: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["## Steps", "", "| step | status | s | budget s | peak GPU MiB | note |", "|---|---|---:|---:|---:|---|"]
    for r in results:
        note = r["message"].replace("|", "/").replace("\n", " ")[:300]
        lines.append(f"| {r['name']} | {r['status']} | {r['seconds']:.1f} | {r['budget_s']:.0f} | "
                     f"{_fmt(r['peak_gpu_mib'], '.0f')} | {note} |")
    return lines + [""]


def amp_table(results: Sequence[dict[str, Any]]) -> list[str]:
    rows = [r for r in results if r["name"].startswith("amp_") and "amp" in r["data"]]
    if not rows:
        return []
    lines = ["## AMP vs fp32 (same trained weights, UCI test rows)", "",
             "| network | params | epochs | 1st epoch s | s/epoch | test acc | max abs Δp | mean abs Δp | top-1 agree "
             "| flips | ok |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        d, a = r["data"], r["data"]["amp"]
        lines.append(f"| {d['network']} | {d['n_parameters']:,} | {d['epochs']} | {d['first_epoch_s']:.2f} | "
                     f"{d['s_per_epoch']:.3f} | {d['test_accuracy']:.3f} | {a['max_abs_diff']:.2e} | "
                     f"{a['mean_abs_diff']:.1e} | {a['top1_agreement']:.1%} | {a['flips']} | "
                     f"{'yes' if a['ok'] else 'NO'} |")
    return lines + ["", f"Autocast dtype: {rows[0]['data']['amp']['autocast_dtype']}. Test accuracy after these few "
                        "epochs is a smoke figure, not a result.", ""]


def device_table(results: Sequence[dict[str, Any]]) -> list[str]:
    """Per training step: what the probe saw and where the checkpoints' weights were."""
    lines = ["## Device evidence", "", "| step | module calls on device / checked | training calls under autocast | "
             "checkpoint weights | AMP scaler |", "|---|---:|---:|---|---|"]
    for r in results:
        d = r["data"]
        if "probe" not in d:
            continue
        p = d["probe"]
        cks = [d["checkpoint"]] if "checkpoint" in d else d.get("members", [])
        where = sorted({w for c in cks for w in c["weights"]})
        scaler = "yes" if cks and all(c["amp_scaler"] for c in cks) else "no" if cks else "–"
        lines.append(f"| {r['name']} | {p['calls'] - p['offending_calls']:,} / {p['calls']:,} | "
                     f"{p['autocast_training_calls']:,} / {p['training_calls']:,} | {', '.join(where) or '–'} | "
                     f"{scaler} |")
    if len(lines) == 4:  # no step with a probe ran
        lines = lines[:1]
    auto = _data(results, "device_auto")
    if auto:
        lines += ["", f"`device: auto` (the default: `{auto.get('default_device')}`) resolved to "
                      f"`{auto.get('auto_resolves_to')}`; Predictor: {auto.get('predictor')}."]
    return [] if len(lines) == 1 else lines + [""]


def bagging_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    rows = [r for r in results if r["name"].startswith("bagging") and "members" in r["data"]]
    if not rows:
        return []
    lines = ["## Bagged members", "", "| step | folds | jobs → processes | GPUs | s | member weights (expected) |",
             "|---|---:|---|---:|---:|---|"]
    for r in rows:
        d = r["data"]
        members = "; ".join(f"{m['member']}: {','.join(m['weights'])} ({m['expected']})" for m in d["members"])
        lines.append(f"| {r['name']} | {d['folds']} | {d['jobs']} → {d['jobs_resolved']} | {d['gpus']} | "
                     f"{d['train_s']:.1f} | {members} |")
    return lines + ["", "With one GPU `jobs: auto` is 1 (one member at a time, in this process); `bagging_spawn` "
                        "forces the spawned path.", ""]


def book_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """The book: per-notebook seconds, the GPU and peak MiB of each kernel, the networks' checkpoints."""
    d = _data(results, "mirage_book")
    if not d.get("book"):
        return []
    book, gpu = d["book"], d["book"]["gpu_by_notebook"]
    lines = ["## MIRAGE book", "", f"{d['events']:,} synthetic events, {_fmt(d.get('tracks'))} tracks, "
             f"{_fmt(d.get('classes'))} classes; `{book['command']}`: exit {book['returncode']}, {book['seconds']:.0f} s "
             f"(export {d['synthetic_s']:.0f} s).", "",
             "| notebook | s | GPU | peak MiB (nvidia-smi) |", "|---|---:|---|---:|"]
    names = sorted({*d.get("notebooks_s", {}), *(gpu if isinstance(gpu, dict) else {})})
    for name in names:
        g = gpu.get(name, {}) if isinstance(gpu, dict) else {}
        lines.append(f"| {name} | {_fmt(d.get('notebooks_s', {}).get(name))} | "
                     f"{', '.join(map(str, g.get('gpus', []))) or '–'} | {_fmt(g.get('peak_mib'), '.0f')} |")
    lines += ["", "| network | checkpoint weights | AMP scaler | epochs |", "|---|---|---|---:|"]
    for model, info in d.get("models", {}).items():
        lines.append(f"| {model} | {', '.join(info['weights']) or 'missing'} | {'yes' if info['amp_scaler'] else 'no'} "
                     f"| {info['epoch']} |")
    return lines + ([] if isinstance(gpu, dict) else ["", f"GPU per notebook: {gpu}."]) + [""]


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report as markdown."""
    results = report["steps"]
    failures = [f"- **{r['name']}** {r['status']}: {r['message']}" for r in results
                if r["status"] in ("FAILED", "skipped")]
    parts = [header_lines(report), steps_table(results), amp_table(results), device_table(results),
             bagging_lines(results), book_lines(results),
             ["## Failures and skipped steps", "", *failures, ""] if failures else [],
             ["## How to read this", "", HOW_TO_READ, ""]]
    return "\n".join(line for part in parts for line in part)


def write_report(report: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    """`<stem>.md` and `<stem>.json` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md.write_text(render_markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)),
                  encoding="utf-8")
    return md, js


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="steps: " + ", ".join(s.name for s in all_steps()))
    ap.add_argument("--steps", default="all",
                    help="comma-separated steps or prefixes (amp = every amp_*); env always runs")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="total seconds (default %(default).0f)")
    ap.add_argument("--dry-run", action="store_true", help="list the steps and their budgets, run nothing")
    ap.add_argument("--expect", choices=["cuda", "cpu"], default="cuda",
                    help="device every tensor must be on; cpu = a self-test of this script on a CPU box")
    ap.add_argument("--epochs", type=int, default=5, help="epochs per network in the amp_* steps")
    ap.add_argument("--tol", type=float, default=TOLERANCE, help="AMP vs fp32: max |Δp| allowed")
    ap.add_argument("--bag-folds", type=int, default=5, help="train.bagging.folds")
    ap.add_argument("--bag-epochs", type=int, default=3, help="epochs per bag member")
    ap.add_argument("--spawn-jobs", type=int, default=5, help="train.bagging.jobs of bagging_spawn")
    ap.add_argument("--mirage-events", type=int, default=100_000, help="size of the synthetic MIRAGE export")
    ap.add_argument("--book-jobs", type=int, default=4, help="geomusic run --jobs (notebook slot s on GPU s mod n)")
    ap.add_argument("--strict-budget", action="store_true", help="a step over its budget fails the check")
    ap.add_argument("--work-dir", type=Path, default=REPO / "benchmarks" / "out" / "gpu_check")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="report folder (default benchmarks/results; with --expect cpu benchmarks/out)")
    return ap


def fresh_work(work: Path) -> None:
    """Empty the folders this check trains into (the synthetic exports are kept: they are seeded)."""
    for name in ("train", "runs", "mirage_cache"):
        shutil.rmtree(work / name, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    steps = select_steps(args.steps, all_steps())
    if args.dry_run:
        print("\n".join(plan_lines(steps, args.budget_s)))
        print(f"options: --epochs {args.epochs}, --bag-folds {args.bag_folds}, --bag-epochs {args.bag_epochs}, "
              f"--spawn-jobs {args.spawn_jobs}, --mirage-events {args.mirage_events}, --book-jobs {args.book_jobs}, "
              f"--tol {args.tol}, --expect {args.expect}")
        return 0
    os.environ.setdefault("TQDM_DISABLE", "1")
    started = time.perf_counter()
    ctx = Context(args, args.expect, args.work_dir.resolve(), deadline=started + args.budget_s)
    fresh_work(ctx.work)
    results = run_steps(steps, ctx, memory_factory=GpuMemory if args.expect == "cuda" else lambda: None)
    word, code = verdict(results, args.strict_budget)
    today = dt.date.today().isoformat()
    report = {"verdict": word, "exit_code": code, "date": today, "expect": args.expect, "commit": git_commit(),
              "command": " ".join(["benchmarks/gpu_check.py", *(sys.argv[1:] if argv is None else argv)]),
              "budget_s": args.budget_s, "total_s": round(time.perf_counter() - started, 1), "tolerance": args.tol,
              "steps": results}
    out_dir = args.out_dir or REPO / "benchmarks" / ("results" if args.expect == "cuda" else "out")
    md, js = write_report(report, out_dir, f"gpu_check_{today}" + ("" if args.expect == "cuda" else "_cpu"))
    print(f"\nGPU check: {word} (exit {code}) in {report['total_s']:.0f} s; report {md} and {js.name}")
    for r in results:
        if r["status"] == "FAILED":
            print(f"  FAILED {r['name']}: {r['message']}", file=sys.stderr)
    left_out = [r["name"] for r in results if r["status"] == "skipped"]
    if left_out:
        print(f"  not run: {', '.join(left_out)} ({results[-1]['message'] if len(left_out) == 1 else 'see the report'})",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
