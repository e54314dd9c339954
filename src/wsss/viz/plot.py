"""Plots as image arrays (matplotlib, headless), for reports and figures."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image


def line_plot(
    xs: Sequence[float],
    ys: Sequence[float] | dict[str, Sequence[float]],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    size: tuple[float, float] = (4.5, 3.0),
) -> np.ndarray:
    """One line (or one per name of ``ys``) over ``xs``, with its maximum marked.

    Returns:
        ``(H, W, 3)`` uint8 RGB image of the plot.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    series = ys if isinstance(ys, dict) else {"": ys}
    fig = Figure(figsize=size, dpi=100)
    ax = fig.add_subplot()
    for name, values in series.items():
        values = np.asarray(values, dtype=float)
        (line,) = ax.plot(xs, values, marker="o", markersize=3, label=name or None)
        if values.size and np.isfinite(values).any():
            best = int(np.nanargmax(values))
            ax.annotate(f"{values[best]:.1f} at {xs[best]:.2f}", (xs[best], values[best]),
                        textcoords="offset points", xytext=(4, 6), fontsize=8,
                        color=line.get_color())  # fmt: skip
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"))
