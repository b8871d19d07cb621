"""The book as a publication, without building it: one visible parameters cell per executed
notebook, readable-page CSS and no empty index in the config, citations through bibtex roles,
the repository link (set or not), external figures kept out of our own tables, and the
plotly.js script only on pages with figures."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import yaml

from geomusic_lib.book import pages as bookpages
from geomusic_lib.core import RunDir

ROOT = Path(__file__).resolve().parents[1]


def _papermill_copy() -> nbformat.NotebookNode:
    """A small notebook as papermill leaves it: defaults cell, injected cell, then code."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## Parameters"),
                nbformat.v4.new_code_cell('run_name: str = "lab"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('# Parameters\nrun_name = "smoke"\n', metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(run_name)")]
    return nb


def _visible_parameter_cells(nb: dict) -> list[dict]:
    hidden = {"remove-cell", "remove-input"}
    return [c for c in nb["cells"] if {"parameters", "injected-parameters"} & set(c["metadata"].get("tags", []))
            and not hidden & set(c["metadata"].get("tags", []))]


def test_an_executed_copy_shows_one_parameters_cell_holding_what_ran():
    nb = _papermill_copy()
    assert len(_visible_parameter_cells(nb)) == 2
    assert bookpages.hide_default_parameters(nb) is True
    visible = _visible_parameter_cells(nb)
    assert len(visible) == 1 and 'run_name = "smoke"' in visible[0]["source"]
    assert bookpages.hide_default_parameters(nb) is False  # tagging twice changes nothing


def test_a_copy_papermill_did_not_run_keeps_its_defaults_visible():
    nb = _papermill_copy()
    del nb.cells[2]  # a skipped model notebook: no injected cell
    assert bookpages.hide_default_parameters(nb) is False
    assert len(_visible_parameter_cells(nb)) == 1


def test_staging_the_book_tags_the_run_s_executed_copies(tmp_path):
    root = tmp_path / "src"
    (root / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    run = RunDir(tmp_path / "runs" / "r")
    run.book_notebooks.mkdir(parents=True)
    nbformat.write(_papermill_copy(), run.book_notebooks / "03_fcnn.ipynb")
    bookpages.stage_book_sources(root, run)
    staged = nbformat.read(run.book_notebooks / "03_fcnn.ipynb", as_version=4)
    assert len(_visible_parameter_cells(staged)) == 1
    nbformat.validate(staged)


def _sphinx_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]


def test_the_book_loads_its_readability_css_and_has_no_empty_index():
    config = _sphinx_config()
    static = [ROOT / path for path in config["html_static_path"]]
    css = [next(p / name for p in static if (p / name).is_file()) for name in config["html_css_files"]]
    rules = css[0].read_text(encoding="utf-8")
    assert re.search(r"pre\s*\{[^}]*white-space:\s*pre-wrap", rules)
    assert re.search(r"overflow-x:\s*auto", rules)
    assert config["html_use_index"] is False and config["html_domain_indices"] is False


def _plotly_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location("plotly_offline", ROOT / "book" / "_ext" / "plotly_offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plotly_js_is_added_only_to_pages_holding_a_plotly_figure():
    ext = _plotly_extension()

    class App:
        def __init__(self):
            self.scripts: list[str] = []

        def add_js_file(self, name: str, **_: object) -> None:
            self.scripts.append(name)

    figure_page, text_page = App(), App()
    body = '<div id="x" class="plotly-graph-div" style="height:100%"></div>'
    ext._scripts_for_figures(figure_page, "07", "page.html", {"body": body}, None)
    ext._scripts_for_figures(text_page, "data", "page.html", {"body": "<p>plotly is a library</p>"}, None)
    assert figure_page.scripts == [ext.GEO_JS, ext.PLOTLY_JS] and text_page.scripts == []


ROLE = re.compile(r"\{cite(?::(\w+))?\}`([^`]+)`")


def test_book_pages_cite_through_bibtex_roles_with_known_keys():
    keys = set(re.findall(r"@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(encoding="utf-8")))
    cited = set()
    for page in sorted((ROOT / "book").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for kind, names in ROLE.findall(text):
            assert kind in {"t", "p"}, f"{page.name}: use {{cite:t}} or {{cite:p}}, not {{cite{':' + kind if kind else ''}}}"
            cited |= {name.strip() for name in names.split(",")}
        prose = ROLE.sub("", text)
        typed = re.findall(r"[A-Z][a-z]+(?:, [A-Z]\.)*(?: et al\.| & [A-Z][a-z]+)?,? \(?(?:19|20)\d\d[a-z]?\)", prose)
        assert not typed, f"{page.name}: typed citation {typed}; cite with {{cite:t}}`key` from references.bib"
    assert cited and cited <= keys, f"unknown keys: {sorted(cited - keys)}"
    assert ":all:" in (ROOT / "book" / "references.md").read_text(encoding="utf-8")
    assert _sphinx_config()["bibtex_reference_style"] == "author_year"


def test_the_published_3113_km_figure_stays_out_of_our_tables_and_carries_its_protocol():
    files = [ROOT / "README.md", *(ROOT / "book").glob("*.md"), *(ROOT / "benchmarks").glob("*.py"),
             *(ROOT / "geomusic_lib").glob("*.py")]
    def lines(path: Path) -> list[str]:  # Python string literals split over lines are joined first
        return re.sub(r'"\s*\n\s*"', "", path.read_text(encoding="utf-8")).splitlines()

    mentions = [(f.name, line) for f in files for line in lines(f) if re.search(r"3,113|3113", line) and "Zhou" in line]
    assert mentions, "the published reference disappeared from README/benchmarks"
    for name, line in mentions:
        assert not line.lstrip().startswith("|"), f"{name}: the published figure sits in a table row"
        assert "1,142" in line and "random-forest" in line and "1,059" in line, f"{name}: protocol missing: {line}"


def _root_config(url: str) -> dict:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["repository"]["url"] = url
    return config


def test_without_a_repository_url_the_book_has_no_repository_link_launch_button_or_placeholder():
    from geomusic_lib.book import book_config, install_markdown, repository_url

    config = book_config(_root_config(""))
    assert repository_url(yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))) == ""  # the default
    assert not config["html"]["use_repository_button"] and not config["html"]["use_issues_button"]
    assert not any(config["launch_buttons"].get(k) for k in ("binderhub_url", "jupyterhub_url", "colab_url", "thebe"))
    assert config["repository"]["url"] == ""  # not Jupyter Book's default (its own repository)
    text = install_markdown("")
    assert "git clone" not in text and "<" not in text and "Clone the repository" in text
    assert "pip install -e" in text


def test_a_repository_url_turns_on_header_links_binder_and_the_clone_command(tmp_path):
    from geomusic_lib.book import install_markdown, write_book_config

    url = "https://github.com/someone/geomusic"
    source = tmp_path / "_config.yml"
    source.write_text(yaml.safe_dump(_root_config(url + "/")), encoding="utf-8")
    config = write_book_config(source, tmp_path / "built.yml")
    assert yaml.safe_load((tmp_path / "built.yml").read_text(encoding="utf-8")) == config
    assert config["html"]["use_repository_button"] and config["html"]["use_issues_button"]
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["repository"]["url"] == url and config["sphinx"] == _root_config(url)["sphinx"]
    assert f"git clone {url} geomusic" in install_markdown(url)
    with_facts = write_book_config(source, tmp_path / "built.yml", {"run_tracks": "1,059"})
    assert with_facts["parse"]["myst_substitutions"] == {"run_tracks": "1,059"}
    assert yaml.safe_load((tmp_path / "built.yml").read_text(encoding="utf-8")) == with_facts


def test_staging_writes_the_install_steps_the_quick_start_includes(tmp_path):
    root = tmp_path / "src"
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("notebooks", "_generated"))
    shutil.copy(ROOT / "_toc.yml", root / "_toc.yml")
    (root / "_config.yml").write_text(yaml.safe_dump(_root_config("https://gitlab.com/x/geomusic")), encoding="utf-8")
    run = RunDir(tmp_path / "runs" / "r")
    bookpages.stage_book_sources(root, run)
    assert "{include} _generated/install.md" in (run.book_dir / "book" / "quickstart.md").read_text(encoding="utf-8")
    assert "git clone https://gitlab.com/x/geomusic" in (run.book_generated / "install.md").read_text(encoding="utf-8")
    assert not (run.book_dir / "_config.yml").exists()  # written once, with the run's facts (write_generated_pages)
    assert "<this repository>" not in (ROOT / "book" / "quickstart.md").read_text(encoding="utf-8")


def test_launch_links_point_at_the_repository_s_notebook_not_the_executed_copy():
    import importlib.util

    spec = importlib.util.spec_from_file_location("repository_links", ROOT / "book" / "_ext" / "repository_links.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    context = {"header_buttons": [{"label": "launch-buttons", "buttons": [
        {"url": "https://mybinder.org/v2/gh/o/geomusic/main?urlpath=lab/tree/book/notebooks/03_fcnn.ipynb"}]}]}
    ext._launch_links_to_repository(None, "book/notebooks/03_fcnn", "page.html", context, None)
    assert context["header_buttons"][0]["buttons"][0]["url"].endswith("urlpath=lab/tree/notebooks/03_fcnn.ipynb")


def test_update_readme_keeps_sections_it_cannot_make_again_and_marks_them():
    import importlib.util

    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "benchmarks" / "update_readme.py")
    update = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update)
    earlier = update.earlier_sections("### Run `a`\nold a\n#### detail\nx\n### Run `b`\nold b\n")
    merged = update.merged_sections(["### Run `b`\nnew b"], earlier)
    assert merged[0] == "### Run `b`\nnew b"
    assert merged[1].startswith("### Run `a`\nold a\n#### detail") and update.KEPT in merged[1]
    assert update.merged_sections([], {"### x": merged[1]})[0].count(update.KEPT) == 1  # marked once


def test_update_readme_names_the_commit_each_section_was_made_at():
    import importlib.util

    from geomusic_lib.core.manifest import MADE_AT_STAMP

    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "benchmarks" / "update_readme.py")
    update = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update)
    stamped = MADE_AT_STAMP.format("commit 1a2b3c4d5e") + "\n#### Folds\n| a |\n"
    assert update.bench_section("T", stamped) == "### T\n\n*Made at commit 1a2b3c4d5e.*\n\n###### Folds\n| a |"
    assert "Commit not recorded" in update.bench_section("T", "| a |\n")
    assert update.run_commit({"git": {"commit": "f" * 40, "dirty": True}}) == "commit ffffffffff with uncommitted changes"
    assert update.run_commit({}) == "an unrecorded commit"


def test_substitutions_in_prose_pages_are_never_inside_code_spans():
    """MyST leaves `{{ key }}` inside backticks as literal text, so a run's number would not appear."""
    for page in (ROOT / "book").glob("*.md"):
        assert not re.search(r"`[^`\n]*\{\{[^`\n]*`", page.read_text(encoding="utf-8")), page.name


def test_the_folk_page_counts_come_from_the_run_s_loader_report(tmp_path):
    from types import SimpleNamespace

    from geomusic_lib.book.facts import folk_counts_markdown

    report = {"files": ["a", "b"], "tunes_read": 1234, "tunes_labelled": 1000, "classes": {"Germany": 700, "China": 300},
              "excluded": {"ambiguous": 200, "small_class": 34}, "small_classes": {"Canada": 1, "Russia": 33},
              "groups": 900, "largest_group": 12, "tunes_in_multi_tune_groups": 150}
    folk = SimpleNamespace(table=SimpleNamespace(source="folk", notes={"report": report}))
    text = folk_counts_markdown(RunDir(tmp_path / "runs" / "folk"), folk)
    assert "**1,234 tunes** in 2 files" in text and "**1,000 tunes in 2 classes**" in text
    assert "Germany 700, China 300" in text and "Germany, holds 70 %" in text
    assert "alternatives naming different countries: 200" in text and "900 variant groups" in text
    assert "34 tunes in 2 classes (Canada 1, Russia 33)" in text
    uci = SimpleNamespace(table=SimpleNamespace(source="uci", notes={}))
    note = folk_counts_markdown(RunDir(tmp_path / "runs" / "default"), uci)
    assert "no counts of the Essen collection" in note and "params/folk.yaml" in note
    page = (ROOT / "book" / "folk.md").read_text(encoding="utf-8")
    assert "_generated/folk_counts.md" in page and not re.search(r"\d,\d{3} tunes|\d+ tunes in \d+", page)


def test_the_intro_counts_the_networks_this_run_trained():
    """The intro said "four neural networks" while five trained: the count and names now come from the run."""
    from geomusic_lib.book.facts import network_facts

    metrics = pd.DataFrame({"model": ["fcnn", "tabm", "cnn", "rnn", "attention", "logreg", "ensemble"],
                            "kind": ["model"] * 5 + ["baseline", "ensemble"]})
    facts = network_facts(metrics)
    assert facts["run_networks"] == "five" and facts["run_networks_noun"] == "neural networks"
    assert facts["run_network_list"].startswith("a fully connected network, TabM")
    assert facts["run_network_list"].endswith("a recurrent network and an attention model")
    one = network_facts(metrics[metrics["model"].isin(["cnn", "logreg"])])
    assert (one["run_networks"], one["run_networks_noun"], one["run_network_list"]) == ("one", "neural network", "a CNN")
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    assert "{{ run_networks }}" in intro and "Four neural networks" not in intro
