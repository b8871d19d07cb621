"""The run's book: pages, facts and findings written from the run, showcases, small display tables, model
sources."""
from geomusic_lib.book.pages import (
    book_problems, build_book, feature_dictionary_markdown, merged_timings, mirage_scale_markdown,
    results_table_markdown, stage_book_sources, tuning_table_markdown, weighting_protocol, write_generated_pages
)
from geomusic_lib.book.config import book_config, install_markdown, repository_url, write_book_config
from geomusic_lib.book.findings import (
    attention_caveat, comparison_findings, data_findings, feature_findings, floor_of, interpretation_findings,
    network_findings, plan_findings
)
from geomusic_lib.book.showcase import (
    choose_showcase, compact_guesses, prediction_findings, showcase_rows, validation_recall
)
from geomusic_lib.book.summaries import headline_table, shown
from geomusic_lib.book.docs import model_source, show_model_source
from geomusic_lib.book.notebooks import MODEL_NOTEBOOKS, NOTEBOOK_MODELS, notebook_runs, NOTEBOOKS, STAGES

__all__ = [
    "book_problems", "build_book", "feature_dictionary_markdown", "merged_timings", "mirage_scale_markdown",
    "results_table_markdown", "stage_book_sources", "tuning_table_markdown", "weighting_protocol", "write_generated_pages", "book_config",
    "install_markdown", "repository_url", "write_book_config", "attention_caveat", "comparison_findings",
    "data_findings", "feature_findings", "floor_of", "interpretation_findings", "network_findings", "plan_findings",
    "choose_showcase", "compact_guesses", "prediction_findings", "showcase_rows", "validation_recall", "headline_table",
    "shown", "model_source", "show_model_source", "MODEL_NOTEBOOKS", "NOTEBOOK_MODELS", "notebook_runs", "NOTEBOOKS",
    "STAGES"
]
