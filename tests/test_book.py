"""The orchestrator and the book: fast unit checks, then (slow) the smoke book end to end:
papermill run, book build, no secret anywhere, injected parameters visible, and every
notebook page's figures rendered by headless Chromium with networking off."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from geomusic_lib.book import pages as bookpages

from geomusic_lib.pipeline import console, run, session

from geomusic_lib.core import load_params, project_root_for, RunDir

ROOT = Path(__file__).resolve().parents[1]
DUMMY_ID, DUMMY_SECRET = "dummy-id-XYZ123", "dummy-secret-ABC789"
BOOK_FILES = ["_config.yml", "_toc.yml", "jupytext.toml", "book", "notebooks", "params"]


# ----------------------------------------------------------------------------- fast
def test_toc_lists_every_notebook_and_page_in_book_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    notebooks = [f.rsplit("/", 1)[1] for f in files if f.startswith("book/notebooks/")]
    assert notebooks == list(run.NOTEBOOKS)
    for page in (f for f in files if not f.startswith("book/notebooks/")):
        assert (ROOT / f"{page}.md").is_file(), f"{page}.md is in _toc.yml but missing"


def test_results_page_numbers_come_from_the_run():
    text = (ROOT / "book" / "results.md").read_text(encoding="utf-8")
    assert "_generated/results_table.md" in text
    table = text.split("## Models, ensemble and baselines", 1)[1]
    assert not re.search(r"\b0\.\d+|\d+\.\d+ ?%", table), "typed numbers on the results page"


def test_select_notebooks_accepts_names_numbers_and_keeps_book_order():
    assert run.select_notebooks(None) == list(run.NOTEBOOKS)
    assert run.select_notebooks(["05_rnn,03"]) == ["03_fcnn", "05_rnn"]
    assert run.select_notebooks(["fcnn"]) == ["03_fcnn"]
    with pytest.raises(run.UserError, match="no such notebook"):
        run.select_notebooks(["99_nothing"])


def test_model_notebooks_get_one_gpu_each_round_robin():
    envs = [run.kernel_environment(slot, jobs=4, n_gpus=2) for slot in range(4)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "0", "1"]
    assert "CUDA_VISIBLE_DEVICES" not in run.kernel_environment(0, jobs=4, n_gpus=1)
    assert "CUDA_VISIBLE_DEVICES" not in run.kernel_environment(None, jobs=1, n_gpus=4)
    assert run.kernel_environment(0, jobs=2, n_gpus=0)["OMP_NUM_THREADS"] >= "1"


def test_params_paths_resolve_against_the_folder_holding_params(tmp_path):
    assert project_root_for(tmp_path / "params" / "x.yaml") == tmp_path.resolve()
    assert project_root_for(tmp_path / "elsewhere" / "x.yaml") == (tmp_path / "elsewhere").resolve()


@pytest.mark.parametrize("cwd, given", [("notebooks", "../params/p.yaml"), (".", "../params/p.yaml"),
                                        (".", "params/p.yaml"), ("notebooks", "params/p.yaml")])
def test_open_stage_resolves_the_params_file_from_root_or_notebooks_without_chdir(tmp_path, capsys, monkeypatch,
                                                                                   cwd, given):
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params" / "p.yaml").write_text("run_name: a\nseed: 7\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / cwd)
    params, run_dir = session.open_stage(given, run_name="b", show=["run_name", "seed"])
    assert Path.cwd() == (tmp_path / cwd).resolve()  # the kernel's directory is left alone
    assert params.run_name == "b" and params.seed == 7
    assert run_dir.path == tmp_path.resolve() / "runs" / "b"
    out = capsys.readouterr().out
    assert "run_name: b" in out and "seed: 7" in out and "data:" not in out


def test_format_params_names_an_unknown_section():
    with pytest.raises(KeyError, match="not a params section"):
        session.format_params(load_params(ROOT / "params" / "smoke.yaml"), ["nope"])


def test_markdown_table_formats_floats_and_escapes_pipes():
    import pandas as pd

    text = bookpages.markdown_table(pd.DataFrame({"model": ["a|b"], "accuracy": [0.123456], "n": [5]}))
    assert text.splitlines()[0] == "| model | accuracy | n |"
    assert "a\\|b" in text and "0.123" in text and "0.1234" not in text


def test_missing_metrics_give_a_note_not_an_error(tmp_path):
    assert "No metrics table yet" in bookpages.results_table_markdown(tmp_path)


def test_a_level_the_labels_lack_is_named_not_shown_as_nan(tmp_path):
    import pandas as pd

    from geomusic_lib.core import RunDir

    run = RunDir(tmp_path)
    run.metrics_csv.parent.mkdir(parents=True)
    pd.DataFrame({"model": ["fcnn", "rnn"], "kind": "model", "n": 10, "accuracy": [0.3, 0.2],
                  "region_accuracy": [0.5, 0.4], "continent_accuracy": [float("nan")] * 2}).to_csv(run.metrics_csv,
                                                                                                 index=False)
    text = bookpages.results_table_markdown(run)
    assert "continent accuracy" not in text.split("Not scored")[0] and "nan" not in text
    assert "Not scored: continent accuracy" in text and "| region accuracy |" in text


def test_failed_notebook_is_named_with_its_executed_copy(tmp_path, capsys):
    """A failing notebook stops the run; the message names it and the copy with the traceback."""
    root = _copy_book_sources(tmp_path)
    (root / "params" / "broken.yaml").write_text(
        "run_name: broken\ndata: {source: mirage, mirage: {path: nowhere/MIRAGE.csv}}\n", encoding="utf-8")
    (root / "params" / "table.yaml").write_text("run_name: mine\ndata: {source: table}\n", encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        code = run.main(["--params", "params/broken.yaml", "--only", "01", "--no-book"])
        table_code = run.main(["--params", "params/table.yaml", "--only", "01", "--no-book"])
    finally:
        os.chdir(cwd)
    captured = capsys.readouterr()
    assert code == 1
    assert "Notebook 01_data_prep failed; executed copy with the traceback: " in captured.out
    executed = RunDir(root / "runs" / "broken").book_notebooks / "01_data_prep.ipynb"
    assert executed.is_file() and "MIRAGE export not found" in executed.read_text(encoding="utf-8")
    # a user's table is checked before any notebook runs: one line, exit 2, nothing executed
    assert table_code == 2 and "data.table.path is empty" in captured.err
    assert not RunDir(root / "runs" / "mine").book_notebooks.exists()
    assert "Traceback" not in executed.read_text(encoding="utf-8")  # a known input error is one line


# ----------------------------------------------------------------------------- slow: the smoke book
def _copy_book_sources(dest: Path) -> Path:
    """The book's sources (not runs/, _build/ or executed copies) in a fresh folder."""
    for name in BOOK_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("notebooks", "_generated", ".ipynb_checkpoints")
                            if name == "book" else shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    """Run `geomusic run --params params/smoke.yaml` once, with dummy Spotify credentials."""
    root = _copy_book_sources(tmp_path_factory.mktemp("book"))
    env = {**os.environ, "SPOTIPY_CLIENT_ID": DUMMY_ID, "SPOTIPY_CLIENT_SECRET": DUMMY_SECRET}
    done = subprocess.run([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/smoke.yaml"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return root, done.stdout


@pytest.mark.slow
def test_smoke_book_runs_every_notebook_and_builds_the_book(smoke_book):
    root, stdout = smoke_book
    book = RunDir(root / "runs" / "smoke")
    for name in run.NOTEBOOKS:
        assert re.search(rf"^{name}\s+\d+\.\d\s+ok$", stdout, re.M), f"no time printed for {name}"
        assert (book.book_notebooks / f"{name}.ipynb").is_file()
        assert (book.book_html / "book" / "notebooks" / f"{name}.html").is_file()
    assert (book.book_html / "index.html").is_file()
    assert f"Book of run 'smoke': runs/smoke/book/_build/html/index.html" in stdout
    assert not (root / "book" / "notebooks").exists() and not (root / "_build").exists()  # nothing shared
    manifest = json.loads((root / "runs" / "smoke" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"]["run_name"] == "smoke" and set(manifest["timings_s"]) == set(run.NOTEBOOKS)
    results = (book.book_html / "book" / "results.html").read_text(encoding="utf-8")
    assert "No metrics table yet" not in results and "fcnn" in results and "logreg" in results
    trained = (book.book_notebooks / "03_fcnn.ipynb").read_text(encoding="utf-8")
    log = (book.logs_dir / "03_fcnn.log").read_text(encoding="utf-8")
    assert "it/s" not in trained and "fcnn:" in log and "it/s" in log  # the bars are in the log, not the page
    from geomusic_lib.core.fileio import umask_mode

    private = [str(p.relative_to(book.path)) for p in book.path.rglob("*")
               if p.is_file() and p.stat().st_mode & 0o777 != umask_mode()]
    assert not private, f"files not readable as the umask allows: {private[:10]}"
    pages = list(book.book_html.rglob("*.html"))  # icons come from the theme's CSS fonts (book/_ext/icons_by_css.py)
    assert pages and not [p.name for p in pages if "fontawesome.js" in p.read_text(encoding="utf-8")]
    assert 'class="fa-solid fa-magnifying-glass' in results
    assert not list((book.book_html / "_static" / "scripts").glob("fontawesome.js*"))


@pytest.mark.slow
def test_no_secret_in_any_executed_notebook_or_page(smoke_book):
    root, _ = smoke_book
    book = RunDir(root / "runs" / "smoke")
    files = list(book.book_notebooks.glob("*.ipynb")) + list(book.book_html.rglob("*.html"))
    files += list((root / "runs").rglob("*.json")) + list((root / "runs").rglob("*.log"))
    assert len(files) > len(run.NOTEBOOKS)
    leaks = [str(f.relative_to(root)) for f in files
             if DUMMY_ID in (text := f.read_text(encoding="utf-8", errors="replace")) or DUMMY_SECRET in text]
    assert not leaks, f"Spotify credentials leaked into {leaks}"


@pytest.mark.slow
def test_injected_parameters_are_visible_in_every_notebook_page(smoke_book):
    root, _ = smoke_book
    for name in run.NOTEBOOKS:
        nb = json.loads((RunDir(root / "runs" / "smoke").book_notebooks / f"{name}.ipynb").read_text(encoding="utf-8"))
        injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        assert len(injected) == 1 and "../params/smoke.yaml" in "".join(injected[0]["source"])
        page = (RunDir(root / "runs" / "smoke").book_html / "book" / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        assert "../params/smoke.yaml" in page
        assert "run_name: smoke" in page or "run directory: runs/smoke" in page


# ----------------------------------------------------------------------------- slow: headless Chromium
def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def offline_browser(*args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with no network: in its own network namespace when `unshare` allows it,
    else with every host name unresolvable and an unreachable proxy."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
               "--virtual-time-budget=15000", *args]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-rn", *command]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=180)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def plotly_figures(dom: str) -> tuple[int, int]:
    """(figure divs, figures that drew their data) in a dumped DOM. A map draws its data only
    once the world geometry is loaded, so it counts when its countries or points exist."""
    starts = [m.start() for m in re.finditer(r'<div[^>]*class="[^"]*plotly-graph-div', dom)]
    drawn = 0
    for i, start in enumerate(starts):
        chunk = dom[start: starts[i + 1] if i + 1 < len(starts) else len(dom)]
        if 'class="main-svg"' not in chunk:
            continue
        if 'class="geo geo"' in chunk:
            drawn += "choroplethlocation" in chunk or 'class="point"' in chunk
        else:
            drawn += 'class="trace' in chunk or 'class="hm"' in chunk or "gl-canvas" in chunk
    return len(starts), drawn


def png_is_not_blank(path: Path) -> bool:
    """Decode a PNG's pixel rows (no imaging library needed) and check they are not all one colour."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(set(raw[1000:200000])) > 16


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_every_notebook_page_draws_its_figures_offline(smoke_book):
    root, _ = smoke_book
    book = RunDir(root / "runs" / "smoke")
    pages = book.book_html / "book" / "notebooks"
    total = 0
    for name in run.NOTEBOOKS:
        executed = (book.book_notebooks / f"{name}.ipynb").read_text(encoding="utf-8")
        expected = executed.count("application/vnd.plotly.v1+json")
        done = offline_browser("--dump-dom", (pages / f"{name}.html").as_uri())
        figures, drawn = plotly_figures(done.stdout)
        assert figures == expected, f"{name}: {expected} plotly figures in the notebook, {figures} on the page"
        assert drawn == figures, f"{name}: only {drawn} of {figures} plotly figures drew (offline)"
        assert "could not find topojson" not in done.stdout
        total += figures
    assert total >= 10


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_screenshot_of_the_evaluation_page_is_not_blank(smoke_book, tmp_path):
    root, _ = smoke_book
    shot = tmp_path / "07_evaluation.png"
    page = RunDir(root / "runs" / "smoke").book_html / "book" / "notebooks" / "07_evaluation.html"
    offline_browser(f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert png_is_not_blank(shot)


# ----------------------------------------------------------------------------- one book per run, one process per run
def _fake_executed(run_dir: RunDir, name: str, origin: str, failed: bool = False) -> None:
    meta = {"papermill": {"parameters": {"run_name": origin}, "exception": failed}}
    run_dir.book_notebooks.mkdir(parents=True, exist_ok=True)
    (run_dir.book_notebooks / f"{name}.ipynb").write_text(json.dumps({"cells": [], "metadata": meta}), encoding="utf-8")


def test_a_book_mixing_runs_or_holding_a_failed_notebook_is_refused(tmp_path):
    book = RunDir(tmp_path / "runs" / "mine")
    for name in run.NOTEBOOKS:
        _fake_executed(book, name, "mine")
    assert bookpages.book_problems(book) == []
    _fake_executed(book, "00_overview", "other")
    _fake_executed(book, "07_evaluation", "mine", failed=True)
    (book.book_notebooks / "09_predict.ipynb").unlink()
    problems = bookpages.book_problems(book)
    assert problems == ["00_overview comes from run 'other'", "07_evaluation failed", "09_predict has not run for 'mine'"]


def _orchestrator(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/smoke.yaml", *args],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=None if env is None else {**os.environ, **env})


@pytest.mark.slow
def test_runs_keep_their_own_files_refuse_a_second_process_and_resume_after_kill_9(smoke_book):
    """A second process on a busy run is refused at once and changes nothing; kill -9 of the whole
    run mid-notebook (held after the first epoch of the second member of 04_cnn's bag, by the trainer's test hook, so the kill point does not
    depend on the machine's speed), then the same command, reuses what had
    finished and gives the predictions of an uninterrupted run; the other run's book is untouched;
    a book that would mix runs is refused."""
    import signal
    import time

    root, _ = smoke_book
    other, lone = RunDir(root / "runs" / "other"), RunDir(root / "runs" / "smoke")
    chain = ("--run-name", "other", "--only", "01,02,03,04", "--no-book")
    from geomusic_lib.core.killpoint import HELD_FILE, HOLD_ENV
    from geomusic_lib.core.rundir import bag_member_dir

    first = _orchestrator(root, *chain, env={HOLD_ENV: "cnn/bag_1:1"})  # smoke.yaml: bags of 2
    deadline = time.time() + 600
    while not other.lock.exists():  # the run has started (01_data_prep takes seconds)
        assert first.poll() is None and time.time() < deadline, "run ended before it took its lock"
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/smoke.yaml", *chain],
                            cwd=root, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and f"run 'other' is in use by pid {first.pid}" in second.stderr
    held = bag_member_dir(other.fold_dir("cnn"), 1) / HELD_FILE
    while not held.is_file():  # 04_cnn has written its first epoch's checkpoint and waits there
        assert first.poll() is None and time.time() < deadline, "run finished or stalled before 04_cnn trained"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # mid-training
    held.unlink()
    first.wait(timeout=60)
    assert not other.predictions("cnn").exists()
    resumed = _orchestrator(root, *chain)
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, out[-3000:] + err[-3000:]
    assert "reusing the finished training" in (other.book_notebooks / "03_fcnn.ipynb").read_text(encoding="utf-8")
    for model in ("fcnn", "tabm", "cnn"):
        pd.testing.assert_frame_equal(pd.read_parquet(other.predictions(model)), pd.read_parquet(lone.predictions(model)))
    assert bookpages.book_problems(lone) == [] and (lone.book_html / "index.html").is_file()  # untouched
    assert bookpages.book_problems(other, ("01_data_prep", "04_cnn")) == []  # its own copies, from run 'other'
    mixed = subprocess.run([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/smoke.yaml",
                            "--run-name", "third", "--only", "00"], cwd=root, capture_output=True, text=True,
                           timeout=300)
    assert mixed.returncode == 2 and "not building the book of run 'third'" in mixed.stderr
    assert not RunDir(root / "runs" / "third").book_html.exists()


def test_the_console_shows_the_latest_progress_line_of_the_newest_kernel_log(tmp_path):
    import time

    (tmp_path / "02_feature_extraction.log").write_text("features (columns): tracks=10\n", encoding="utf-8")
    time.sleep(0.05)
    (tmp_path / "03_fcnn.log").write_text("fcnn:  10%|#   | 6/60\rfcnn:  20%|##  | 12/60 [00:02<00:09]\r",
                                          encoding="utf-8")
    assert console.latest_progress_line(tmp_path) == "03_fcnn: fcnn:  20%|##  | 12/60 [00:02<00:09]"
    time.sleep(0.05)
    (tmp_path / "04_cnn.log").write_text("[IPKernelApp] WARNING | Kernel is running over TCP\n", encoding="utf-8")
    assert console.latest_progress_line(tmp_path) is None  # a kernel's start-up notice is not progress
    assert console.latest_progress_line(tmp_path / "missing") is None


def test_progress_bars_write_plain_text_to_the_kernel_log_under_the_orchestrator(monkeypatch, capfd, tmp_path):
    from geomusic_lib.core import PROGRESS_ENV, progress_bar

    monkeypatch.setenv(PROGRESS_ENV, "log")
    monkeypatch.setenv("TQDM_DISABLE", "1")  # other libraries' bars stay off
    for _ in progress_bar(range(3), desc="fcnn"):
        pass
    assert "fcnn: 100%" in capfd.readouterr().err
    log = tmp_path / "03_fcnn.log"
    monkeypatch.setenv("GEOMUSIC_PROGRESS_FILE", str(log))
    for _ in progress_bar(range(3), desc="tabm"):
        pass
    assert "tabm: 100%" in log.read_text(encoding="utf-8") and "tabm" not in capfd.readouterr().err


def test_the_bar_says_as_many_notebooks_at_a_time_as_jobs_allow():
    """Under --jobs 2 the bar said "4 in parallel"."""
    models = ["03_fcnn", "04_cnn", "05_rnn", "06_attention"]
    assert console.parallel_label(models, jobs=2, n_gpus=0) == "4 notebooks, 2 at a time"
    assert console.parallel_label(models, jobs=8, n_gpus=4) == "4 notebooks, 4 at a time on 4 GPUs"
    assert console.parallel_label(models[:1], jobs=2, n_gpus=0) == "1 notebook, 1 at a time"


def test_the_bar_shows_time_left_only_where_an_earlier_run_of_the_same_params_gives_it(tmp_path, capsys):
    """The overall ETA read 00:39 during minutes of tuning: tqdm's mean over notebooks estimates nothing."""
    from types import SimpleNamespace

    from geomusic_lib.core import params_from_dict, RunDir
    from geomusic_lib.core.manifest import update_manifest, write_manifest

    models = ["03_fcnn", "04_cnn"]
    assert console.seconds_left(["01_data_prep", *models], {"01_data_prep": 10, "03_fcnn": 100}, 2, models) is None
    earlier = {"01_data_prep": 10.0, "03_fcnn": 100.0, "04_cnn": 60.0}
    assert console.seconds_left(["01_data_prep", *models], earlier, jobs=2, parallel=models) == 10 + 160 / 2
    assert console.left_label(None) == "notebooks" and console.left_label(200) == "notebooks (about 3 min left, as last time)"
    bar = console.NotebookBar(["01_data_prep", *models], {}, jobs=1, parallel=models)
    assert "remaining" not in console.BAR_FORMAT and bar.bar.desc == "notebooks"
    bar.close()
    params = params_from_dict({"runs_dir": str(tmp_path), "run_name": "r"})
    run = RunDir(params.run_dir)
    assert console.earlier_timings(run, params) == {}  # no earlier run
    write_manifest(params)
    update_manifest(run.path, timings_s=earlier)
    assert console.earlier_timings(run, params) == earlier
    other = params_from_dict({"runs_dir": str(tmp_path), "run_name": "r", "train": {"epochs": 3}})
    assert console.earlier_timings(run, other) == {}  # other params: the times say nothing
    bar = console.NotebookBar(list(earlier), earlier, jobs=1, parallel=models)
    assert bar.bar.desc.startswith("notebooks (about 3 min left")
    bar.report(SimpleNamespace(name="01_data_prep", seconds=9.0, error=None))
    assert bar.bar.desc == "notebooks (about 3 min left, as last time)" and bar.bar.n == 1
    bar.close()
