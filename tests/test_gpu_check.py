"""benchmarks/gpu_check.py on a CPU: the plan and its budgets, the runner's timing and verdict, the
fallback detectors (forward hook, checkpoint devices), the AMP tolerance and the report, from fake
measurements; one real step as a CPU self-test."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from conftest import REPO

_spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
gc = sys.modules.setdefault("gpu_check", importlib.util.module_from_spec(_spec))  # dataclasses look it up there
_spec.loader.exec_module(gc)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _ctx(tmp_path, budget: float = 100.0, clock: FakeClock | None = None, **args) -> "gc.Context":
    clock = clock or FakeClock()
    namespace = argparse.Namespace(**{"tol": gc.TOLERANCE, "epochs": 1, **args})
    return gc.Context(namespace, "cpu", tmp_path, deadline=clock() + budget, clock=clock)


def _step(name: str, budget: float, clock: FakeClock, takes: float = 0.0, error: Exception | None = None) -> "gc.Step":
    def run(ctx, data):
        clock.now += takes
        data["ran"] = True
        if error is not None:
            raise error
    return gc.Step(name, budget, f"fake {name}", run)


# --------------------------------------------------------------------------- the plan
def test_dry_run_lists_every_step_with_its_budget(capsys):
    assert gc.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    for step in gc.all_steps():
        assert step.name in out
    assert "480 s" in out and "warning" not in out


def test_the_default_plan_fits_eight_minutes():
    steps = gc.all_steps()
    assert sum(s.budget_s for s in steps) <= gc.DEFAULT_BUDGET_S <= 8 * 60
    assert [s.name for s in steps][0] == "env"
    assert {f"amp_{n}" for n in gc.NETWORKS} <= {s.name for s in steps}


def test_steps_take_names_and_prefixes_and_env_always_runs():
    steps = gc.all_steps()
    chosen = [s.name for s in gc.select_steps("mirage_book,amp", steps)]
    assert chosen == ["env", *[f"amp_{n}" for n in gc.NETWORKS], "mirage_book"]
    assert [s.name for s in gc.select_steps("bagging", steps)] == ["env", "bagging", "bagging_spawn"]
    with pytest.raises(SystemExit, match="no such step"):
        gc.select_steps("warp_drive", steps)


def test_a_plan_over_the_total_budget_is_flagged():
    lines = gc.plan_lines(gc.all_steps(), budget_s=100)
    assert "warning" in lines[-1] and "exceed --budget-s (100 s)" in lines[-1]


# --------------------------------------------------------------------------- the runner
def test_a_step_over_its_budget_is_reported_and_fails_only_when_strict(tmp_path):
    clock = FakeClock()
    ctx = _ctx(tmp_path, budget=100, clock=clock)
    results = gc.run_steps([_step("env", 10, clock, 1), _step("slowpoke", 10, clock, takes=25)], ctx, log=lambda _: None)
    assert results[1]["status"] == "slow" and results[1]["seconds"] == 25
    assert "over its budget of 10 s" in results[1]["message"]
    assert gc.verdict(results) == ("PASS", 0)
    assert gc.verdict(results, strict_budget=True) == ("FAIL", 1)


def test_a_step_without_enough_time_left_is_skipped(tmp_path):
    clock = FakeClock()
    ctx = _ctx(tmp_path, budget=30, clock=clock)
    results = gc.run_steps([_step("env", 5, clock, 20), _step("big", 20, clock, 1)], ctx, log=lambda _: None)
    assert results[1]["status"] == "skipped" and "10 s of the total budget left" in results[1]["message"]
    assert "ran" not in results[1]["data"]
    assert gc.verdict(results) == ("INCOMPLETE", 3)


def test_a_failed_env_stops_the_rest_and_an_error_fails_its_step(tmp_path):
    clock = FakeClock()
    env = _step("env", 5, clock, error=gc.CheckFailure("no CUDA GPU visible"))
    results = gc.run_steps([env, _step("next", 5, clock)], _ctx(tmp_path, clock=clock), log=lambda _: None)
    assert [r["status"] for r in results] == ["FAILED", "skipped"]
    assert "env failed" in results[1]["message"]
    assert gc.verdict(results) == ("FAIL", 2)
    crash = gc.run_step(_step("crash", 5, clock, error=KeyError("x")), _ctx(tmp_path, clock=clock))
    assert crash["status"] == "FAILED" and crash["message"].startswith("KeyError") and "traceback" in crash["data"]


# --------------------------------------------------------------------------- fallback detection
def test_the_probe_flags_a_cpu_tensor_when_cuda_is_expected():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).train()
    with gc.DeviceProbe("cuda") as probe:
        model(torch.zeros(2, 4))
    assert probe.calls == 3 and probe.offending_calls == 3
    problems = probe.problems(need_autocast=True)
    assert any(p.startswith("CPU FALLBACK: 3 of 3") and "Linear: input[0] on cpu" in p for p in problems)
    assert any("AMP was not active" in p for p in problems)
    model(torch.zeros(2, 4))  # the hook is gone after the block
    assert probe.calls == 3


def test_the_probe_passes_tensors_on_the_expected_device_and_needs_a_forward():
    model = nn.Linear(4, 3).train()
    with gc.DeviceProbe("cpu") as probe:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(torch.zeros(2, 4))
    assert probe.problems(need_autocast=True) == []
    assert probe.summary()["autocast_training_calls"] == 1
    with gc.DeviceProbe("cpu") as idle:
        pass
    assert "saw no (training) forward pass" in idle.problems(need_autocast=False)[0]


def test_a_packed_sequence_is_checked_by_its_data_only():
    packed = pack_padded_sequence(torch.zeros(2, 3, 1), torch.tensor([3, 2]), batch_first=True)
    labels = [label for label, _ in gc._tensors_of([packed, None, {"m": torch.ones(1)}], "input")]
    assert labels == ["input[0]", "input[2]['m']"]


def test_a_checkpoint_saved_on_the_cpu_is_a_fallback(tmp_path):
    weight = torch.ones(3)
    path = tmp_path / "checkpoint_last.pt"
    torch.save({"state_dict": {"w": weight}, "optimizer_state": {"state": {0: {"step": torch.tensor(1.0),
                "exp_avg": torch.zeros(3)}}}, "scaler_state": {}, "epoch": 2}, path)
    info = gc.checkpoint_devices(path)
    assert info["weights"] == ["cpu"] and info["optimizer"] == ["cpu"] and not info["amp_scaler"]
    problems = gc.checkpoint_problems(info, "cuda", need_amp=True)
    assert problems[0].startswith("CPU FALLBACK") and "no AMP grad scaler" in problems[1]
    assert gc.checkpoint_problems(info, "cpu", need_amp=False) == []
    member = {"path": "bag_1", "weights": ["cuda:0"], "optimizer": ["cuda:0"], "amp_scaler": True}
    assert gc.checkpoint_problems(member, "cuda:1", need_amp=True)  # member 1 belongs on GPU 1 of 2
    assert gc.checkpoint_problems(member, "cuda", need_amp=True) == []


# --------------------------------------------------------------------------- AMP tolerance
def test_amp_agreement_holds_within_the_tolerance_and_fails_beyond():
    p = np.array([[0.7, 0.2, 0.1], [0.41, 0.40, 0.19]])
    same = gc.compare_predictions(p, p)
    assert same["ok"] and same["max_abs_diff"] == 0 and same["top1_agreement"] == 1
    near = gc.compare_predictions(p, p + np.array([[0, 0, 0], [-0.01, 0.01, 0]]))
    assert near["ok"] and near["flips"] == 1 and near["max_flip_margin"] == pytest.approx(0.01)
    far = gc.compare_predictions(p, p + np.array([[-0.05, 0.05, 0], [0, 0, 0]]))
    assert not far["ok"] and far["max_abs_diff"] == pytest.approx(0.05)
    assert not gc.compare_predictions(p, p * np.nan)["ok"]
    with pytest.raises(gc.CheckFailure, match="shape"):
        gc.compare_predictions(p, p[:1])


# --------------------------------------------------------------------------- the report
def _fake_results() -> list[dict]:
    def rec(name, status="ok", seconds=1.0, budget=20, message="", **data):
        return {"name": name, "what": name, "status": status, "seconds": seconds, "budget_s": budget,
                "peak_gpu_mib": 812.5, "message": message, "data": data}
    probe = {"expect": "cuda", "calls": 900, "training_calls": 700, "autocast_training_calls": 700,
             "offending_calls": 0, "examples": []}
    ckpt = {"path": "x", "weights": ["cuda:0"], "optimizer": ["cuda:0"], "amp_scaler": True, "epoch": 5}
    amp = {"rows": 212, "max_abs_diff": 0.0031, "mean_abs_diff": 2e-5, "top1_agreement": 1.0, "flips": 0,
           "max_flip_margin": 0.0, "finite": True, "tolerance": 0.02, "ok": True, "autocast_dtype": "float16"}
    members = [{"member": j, "expected": "cuda:0", "weights": ["cuda:0"], "amp_scaler": True, "epoch": 3,
                "problems": []} for j in range(5)]
    book = {"command": "-m geomusic_lib run --jobs 4 --no-book", "returncode": 1, "timed_out": False, "seconds": 190.0,
            "gpu_by_notebook": {"03_fcnn": {"gpus": [0], "peak_mib": 1210.0}}, "log": "l", "log_tail": []}
    return [rec("env", python="3.12.3", cpu_cores=16, torch="2.11.0+cu130", cuda_build="13.0", cudnn=91300,
                driver="580.159.04", gpus=[{"index": 0, "name": "NVIDIA H200", "memory_gib": 139.8,
                                            "capability": "9.0", "multiprocessors": 132}]),
            rec("amp_fcnn", seconds=25.0, status="slow", message="took 25.0 s, over its budget of 20 s",
                network="fcnn", n_parameters=178721, epochs=5, first_epoch_s=1.9, s_per_epoch=0.05, test_accuracy=0.41,
                train_s=2.2, probe=probe, checkpoint=ckpt, amp=amp),
            rec("device_auto", default_device="auto", auto_resolves_to="cuda", predictor={"device": "cuda"}),
            rec("bagging_spawn", folds=5, jobs=5, jobs_resolved=5, spawned=True, gpus=1, train_s=30.0,
                probe={**probe, "training_calls": 0, "autocast_training_calls": 0}, members=members),
            rec("mirage_book", status="FAILED", message="CPU FALLBACK: cnn checkpoint on ['cpu']", events=100_000,
                synthetic_s=2.0, jobs=4, book=book, tracks=35012, classes=85,
                notebooks_s={"03_fcnn": 21.0, "07_evaluation": 80.0},
                models={"cnn": {**ckpt, "weights": ["cpu"], "amp_scaler": False}})]


def test_the_report_from_fake_measurements(tmp_path):
    results = _fake_results()
    word, code = gc.verdict(results)
    report = {"verdict": word, "exit_code": code, "date": "2026-12-03", "expect": "cuda", "commit": "commit abc",
              "command": "benchmarks/gpu_check.py", "budget_s": 480, "total_s": 300.0, "tolerance": 0.02,
              "steps": results}
    md, js = gc.write_report(report, tmp_path, "gpu_check_2026-12-03")
    text = md.read_text(encoding="utf-8")
    assert (word, code) == ("FAIL", 1) and text.startswith("# GPU check 2026-12-03: FAIL\n")
    assert "NVIDIA H200 (139.8 GiB, sm 9.0)" in text and "torch 2.11.0+cu130, CUDA build 13.0" in text
    assert "| amp_fcnn | slow | 25.0 | 20 | 812 | took 25.0 s, over its budget of 20 s |" in text
    assert "| fcnn | 178,721 | 5 | 1.90 | 0.050 | 0.410 | 3.10e-03 |" in text
    assert "| amp_fcnn | 900 / 900 | 700 / 700 | cuda:0 | yes |" in text
    assert "| bagging_spawn | 5 | 5 → 5 | 1 | 30.0 |" in text
    assert "| 03_fcnn | 21.0 | 0 | 1210 |" in text and "| 07_evaluation | 80.0 | – | – |" in text
    assert "| cnn | cpu | no | 5 |" in text
    assert "- **mirage_book** FAILED: CPU FALLBACK" in text
    assert json.loads(js.read_text(encoding="utf-8"))["verdict"] == "FAIL"


def test_gpu_samples_are_attributed_to_notebooks():
    text = "4242, GPU-aaa, 1210\n4243, GPU-bbb, 900\nNo running processes found\n4244, GPU-aaa, [N/A]\n"
    apps = gc.parse_compute_apps(text)
    assert apps == [(4242, "GPU-aaa", 1210.0), (4243, "GPU-bbb", 900.0)]
    seen: dict = {}
    gc.attribute(apps, {4242: "03_fcnn"}, {"GPU-aaa": 0, "GPU-bbb": 1}, seen)
    gc.attribute([(4242, "GPU-aaa", 1500.0)], {4242: "03_fcnn"}, {"GPU-aaa": 0}, seen)
    assert seen == {"03_fcnn": {"gpus": [0], "peak_mib": 1500.0}, "other": {"gpus": [1], "peak_mib": 900.0}}


# --------------------------------------------------------------------------- params and one real step
def test_the_generated_params_are_valid(tmp_path):
    from geomusic_lib.core import load_params

    path, run, models = gc.mirage_params(tmp_path, tmp_path / "m.csv", 100_000)
    params = load_params(path)
    assert params.device == "auto" and params.train.amp and params.data.mirage.min_tracks_per_class == 20
    assert run == tmp_path / "runs" / "gpu_check_mirage_100000" and models == ["fcnn", "cnn", "rnn", "attention"]
    assert yaml.safe_load(path.read_text())["data"]["mirage"]["path"] == str(tmp_path / "m.csv")
    bag = gc.uci_params(_ctx(tmp_path), 3, bagging={"folds": 5, "jobs": "auto"})
    assert (bag.device, bag.train.epochs, bag.train.bagging.jobs, bag.train.amp) == ("auto", 3, "auto", True)


def test_one_step_runs_end_to_end_as_a_cpu_self_test(tmp_path):
    code = gc.main(["--expect", "cpu", "--steps", "amp_fcnn,device_auto", "--epochs", "1", "--budget-s", "300",
                    "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path)])
    report = json.loads(next(tmp_path.glob("gpu_check_*_cpu.json")).read_text(encoding="utf-8"))
    steps = {s["name"]: s for s in report["steps"]}
    assert code == 0 and steps["amp_fcnn"]["status"] in ("ok", "slow"), steps["amp_fcnn"]["message"]
    assert steps["amp_fcnn"]["data"]["probe"]["training_calls"] > 0
    assert steps["amp_fcnn"]["data"]["checkpoint"]["weights"] == ["cpu"]
    assert steps["device_auto"]["data"]["predictor"]["max_abs_diff_vs_trainer"] < 1e-6
    assert "CPU SELF-TEST" in next(tmp_path.glob("gpu_check_*_cpu.md")).read_text(encoding="utf-8")


def test_training_that_falls_back_to_the_cpu_fails_loudly(tmp_path):
    """On this CPU box `device: auto` trains on the CPU: expecting CUDA, the step must fail, naming the fallback."""
    ctx = _ctx(tmp_path, budget=300)
    ctx.expect = "cuda"
    step = next(s for s in gc.all_steps() if s.name == "amp_fcnn")
    result = gc.run_step(step, ctx)
    assert result["status"] == "FAILED"
    assert result["message"].startswith("CPU FALLBACK: ") and "input[0] on cpu" in result["message"]
    assert "AMP was not active" in result["message"] and "no AMP grad scaler" in result["message"]
