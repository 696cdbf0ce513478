"""``--plot FILE.png|FILE.svg``: the per-sample loss histogram drawn by the optional matplotlib."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

PLOT_FORMATS = (".png", ".svg")
#: Figure size in inches and PNG resolution: a PNG is 960 × 540 pixels.
FIGSIZE = (6.4, 3.6)
DPI = 150


def check_plot_path(path: Path) -> None:
    if path.suffix.lower() not in PLOT_FORMATS:
        raise UsageError(f"--plot {path}: expected a .png or .svg file name")


def _matplotlib_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'lossctl[plot]'") from None
    return Figure


def plot_histogram(path: Path, h, title: str, log: bool) -> None:
    """Bars of ``h`` (a :class:`lossctl.core.triage.Histogram`) into ``path``; ``log`` draws the counts
    on a log axis. The file type follows the suffix."""
    check_plot_path(path)
    Figure = _matplotlib_figure()
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    if h.counts:
        widths = [hi - lo for lo, hi in zip(h.edges, h.edges[1:])]
        ax.bar(h.edges[:-1], h.counts, width=widths, align="edge", color="#4c72b0", edgecolor="white", linewidth=0.5)
    if log:
        ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("per-sample loss")
    ax.set_ylabel("samples" + (" (log scale)" if log else ""))
    ax.set_title(title, fontsize=10)
    if h.nonfinite:
        ax.annotate(f"{h.nonfinite} not finite (not drawn)", xy=(1, 1), xycoords="axes fraction",
                    ha="right", va="bottom", fontsize=8)
    from matplotlib import rc_context

    # fixed element ids (the same inputs give the same bytes); text kept as text (searchable, small)
    import io

    from ..io.writers import write_atomic

    buf = io.BytesIO()
    with rc_context({"svg.hashsalt": "lossctl", "svg.fonttype": "none"}):
        fig.savefig(buf, format=path.suffix.lower().lstrip("."), dpi=DPI, metadata=_metadata(path, title))
    write_atomic(path, buf.getvalue(), what=f"--plot {path}")


def _metadata(path: Path, title: str) -> dict:
    # no creation date or version: the same inputs draw the same bytes (the README picture stays put)
    if path.suffix.lower() == ".svg":
        return {"Date": None, "Title": title, "Creator": "lossctl"}
    return {"Software": None, "Title": title}
