from pathlib import Path

import pytest

from geomusic_lib.core import ParamsError, load_params, params_from_dict

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "params").glob("*.yaml")))
def test_shipped_params_files_are_valid(name):
    params = load_params(REPO / "params" / name)
    assert params.run_name


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ParamsError, match=r"p.yaml: invalid parameters\n  - train.epoch: unknown key"):
        load_params(path)


def test_bad_value_is_named():
    with pytest.raises(ParamsError, match=r"split.test: .*greater than 0"):
        params_from_dict({"split": {"test": -0.1}})
    with pytest.raises(ParamsError, match=r"device: Input should be 'auto', 'cpu' or 'cuda'"):
        params_from_dict({"device": "tpu"})


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ParamsError, match=r"must be 1.0, got 1.100"):
        params_from_dict({"split": {"train": 0.8, "val": 0.1, "test": 0.2}})


def test_overrides_merge_into_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("seed: 1\ntrain:\n  epochs: 5\n  lr: 0.01\n")
    params = load_params(path, overrides={"train": {"epochs": 2}})
    assert params.train.epochs == 2 and params.train.lr == 0.01 and params.seed == 1


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamsError, match="nope.yaml: params file not found"):
        load_params(tmp_path / "nope.yaml")


def test_secrets_are_not_parameters_and_never_echoed():
    with pytest.raises(ParamsError, match="unknown key") as err:
        params_from_dict({"features": {"spotify": {"client_secret": "SUPERSECRET123"}}})
    assert "SUPERSECRET123" not in str(err.value) and ".env" in str(err.value)


def test_train_per_model_overrides_one_network_and_rejects_bad_values():
    params = params_from_dict({"train": {"lr": 0.001, "epochs": 7}, "train_per_model": {"rnn": {"lr": 0.003}}})
    assert params.train_for("rnn").lr == 0.003 and params.train_for("rnn").epochs == 7
    assert params.train_for("fcnn").lr == 0.001
    assert params.for_model("rnn").train.lr == 0.003 and params.train.lr == 0.001
    with pytest.raises(ParamsError, match=r"train_per_model\.rnn: lr"):
        params_from_dict({"train_per_model": {"rnn": {"lr": -1}}})
    with pytest.raises(ParamsError, match=r"train_per_model\.cnn: learning_rate"):
        params_from_dict({"train_per_model": {"cnn": {"learning_rate": 0.1}}})
    with pytest.raises(ParamsError, match="train_per_model"):
        params_from_dict({"train_per_model": {"svm": {"lr": 0.1}}})


def test_defaults_live_in_one_place(tmp_path):
    """The schema defaults are default.yaml's values: a file that sets only `data:` runs like default.yaml."""
    default = load_params(REPO / "params" / "default.yaml").to_plain()
    minimal = tmp_path / "minimal.yaml"
    minimal.write_text("data:\n  source: uci\n")
    assert load_params(minimal).to_plain() == default
    assert params_from_dict({}).to_plain() == default


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_params_file_is_refused(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=r"empty.yaml: the params file is empty .*run_name: my_run") as err:
        load_params(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "42\n"])
def test_params_file_must_be_a_mapping(tmp_path, text):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=r"list.yaml: expected a mapping of keys .* found a (list|str|int)") as err:
        load_params(path)
    assert "\n" not in str(err.value)


def test_yaml_syntax_error_names_line_on_one_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 1\ntrain:\n  epochs: [3\n  lr: 0.1\n")
    with pytest.raises(ParamsError, match=r"broken.yaml: not valid YAML \(.* at line \d+, column \d+\)") as err:
        load_params(path)
    assert "\n" not in str(err.value)
