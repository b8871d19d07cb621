"""A melody as a piano roll whose notes are coloured by a model's weight on them (attention or
integrated gradients): one row per tune, time in quarter notes across, pitch up."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geomusic_lib.data.viewpoints import pitch_name, TuneView
from geomusic_lib.evaluation.interpret_sequence import melody_notes
from geomusic_lib.plots.style import colour_bar


def melody_weight_figure(melodies: Sequence[pd.DataFrame], weights: Sequence[np.ndarray], titles: Sequence[str],
                         weight_label: str = "attention weight", signed: bool = False,
                         title: str = "Where the model looks in each melody") -> go.Figure:
    """Piano rolls of `melodies` (from `interpret_sequence.melody_notes`), each note coloured by its
    entry in the matching `weights` array (one per step; steps past the array's end are grey).

    `signed=True` (integrated gradients) uses a diverging scale centred on 0: red notes raise the
    class's probability, blue ones lower it. Rests are not drawn.
    """
    if not (len(melodies) == len(weights) == len(titles)) or not melodies:
        raise ValueError(f"need one weight array and title per melody, got {len(melodies)} melodies, "
                         f"{len(weights)} weight arrays and {len(titles)} titles")
    top = max(float(np.nanmax(np.abs(w))) if len(w) else 0.0 for w in weights) or 1.0
    scale = dict(colorscale="RdBu_r", cmin=-top, cmax=top) if signed else dict(colorscale="Viridis", cmin=0, cmax=top)
    fig = make_subplots(rows=len(melodies), cols=1, subplot_titles=list(titles), vertical_spacing=0.3 / len(melodies))
    for i, (notes, w) in enumerate(zip(melodies, weights), start=1):
        w = np.asarray(w, dtype=float)
        shown = notes[~notes["is_rest"].to_numpy(bool)]
        steps = shown["step"].to_numpy(int)
        colour = np.where(steps < len(w), w[np.minimum(steps, max(len(w) - 1, 0))] if len(w) else np.nan, np.nan)
        fig.add_trace(go.Bar(
            x=shown["duration"], base=shown["onset"], y=shown["midi"], orientation="h", width=0.8,
            marker=dict(color=colour, showscale=i == 1, colorbar=colour_bar(weight_label),
                        line=dict(width=0.5, color="grey"), **scale),
            customdata=np.stack([shown["midi"].map(pitch_name), shown["duration"], colour], axis=1),
            hovertemplate="%{customdata[0]} at %{base:.2f} q<br>duration %{customdata[1]} q<br>"
                          f"{weight_label} " "%{customdata[2]:.3f}<extra></extra>",
            showlegend=False), row=i, col=1)
        fig.update_yaxes(title_text="MIDI pitch", row=i, col=1)
    fig.update_xaxes(title_text="time (quarter notes from the start)", row=len(melodies), col=1)
    fig.update_layout(title=title, height=220 * len(melodies) + 120, bargap=0)
    return fig


def tune_figure(view: TuneView) -> go.Figure:
    """The piano roll of one tune (`data.typical_tune_view`), each note coloured by its beat strength."""
    return melody_weight_figure([melody_notes(view.tune)], [view.steps["beat strength"].to_numpy(float)],
                                [f"{view.tune['track_id']} ({view.tune['label']})"], weight_label="beat strength",
                                title="The tune as notes, coloured by metric weight")
