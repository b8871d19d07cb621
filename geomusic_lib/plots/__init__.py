"""Every figure of the book (plotly; each function returns a `go.Figure` and the notebook shows it):
data in `data`, training and evaluation in `evaluation`, 08 in `interpret` and `melody`, 09 in `predict`,
shared sizes and colours in `style`. Notebooks call them as `plots.<name>`."""
from geomusic_lib.plots.data import (
    WORLD_TOPOJSON, class_map_figure, class_profile, class_profile_heatmap, class_sizes_figure, figure_html,
    geo_assets_script,
)
from geomusic_lib.plots.evaluation import (
    KIND_LABELS, METRIC_LABELS, accuracy_choropleth, accuracy_map, accuracy_points_map, cdf_steps, confusion_matrix_figure, distance_error_cdf,
    learning_curves, model_comparison, reliability_diagram,
)
from geomusic_lib.plots.interpret import (
    CONTINENT_COLOURS, REGION_SYMBOLS, attention_figure, feature_importance_figure, per_class_importance_figure,
    region_styles, tsne_figure,
)
from geomusic_lib.plots.melody import melody_weight_figure, pitch_name, tune_figure
from geomusic_lib.plots.predict import top_k_figure
from geomusic_lib.plots.style import BOOK_WIDTH_PX

__all__ = [
    "WORLD_TOPOJSON", "class_map_figure", "class_profile", "class_profile_heatmap", "class_sizes_figure",
    "figure_html", "geo_assets_script", "KIND_LABELS", "METRIC_LABELS", "accuracy_choropleth", "accuracy_map", "accuracy_points_map", "cdf_steps",
    "confusion_matrix_figure", "distance_error_cdf", "learning_curves", "model_comparison", "reliability_diagram",
    "CONTINENT_COLOURS", "REGION_SYMBOLS", "attention_figure", "feature_importance_figure",
    "per_class_importance_figure", "region_styles", "tsne_figure", "melody_weight_figure", "pitch_name", "tune_figure",
    "top_k_figure", "BOOK_WIDTH_PX",
]
