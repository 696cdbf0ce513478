"""The triage views of a loss command: ``--top K``, ``--hist``, ``--plot FILE`` and the
why-not-finite lines on stderr. The numbers come from :mod:`lossctl.core.triage`; the text
from :mod:`lossctl.render.triage` and :mod:`lossctl.render.table`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError


@dataclass
class Views:
    top: list | None = None  # [TopSample]
    histogram: Any = None  # Histogram, shown with --hist
    show_histogram: bool = False


def wanted(opts: dict[str, Any]) -> bool:
    """Whether the call asks for a view that needs the per-sample values."""
    return opts.get("top") is not None or bool(opts.get("hist")) or opts.get("plot") is not None


def check_options(opts: dict[str, Any], fmt: str, input_paths) -> None:
    """Usage errors, before anything is computed: K ≥ 1, one table in CSV, the plot's file."""
    top = opts.get("top")
    if top is not None and top < 1:
        raise UsageError(f"--top: must be 1 or more, got {top}")
    if fmt == "csv" and opts.get("explain"):
        raise UsageError("--explain: --format csv holds one table of numbers, not a derivation; "
                         "use --format json, plain or table with --explain")
    if fmt == "csv":
        tables = [name for name, on in (("--per-sample", opts.get("per_sample") or opts.get("grad")),
                                        ("--top", top is not None), ("--hist", opts.get("hist"))) if on]
        if len(tables) > 1:
            raise UsageError(f"{' and '.join(tables)}: --format csv holds one table; choose one, or use --format json")
    if opts.get("plot") is not None:
        from ..io.writers import check_output_path
        from ..render.plot import PLOT_FORMATS

        check_output_path(Path(opts["plot"]), input_paths, opts.get("force", False), key="plot",
                          suffixes=PLOT_FORMATS)


def compute_views(call: dict[str, Any], result, opts: dict[str, Any]) -> Views:
    """The rows of ``--top``, the histogram of ``--hist``; ``--plot`` is drawn here."""
    from ..core import triage

    views = Views()
    if opts.get("top") is not None:
        views.top = triage.top_samples(call, result, opts["top"])
    if opts.get("hist") or opts.get("plot"):
        views.histogram = triage.histogram(result.per_sample)
        views.show_histogram = bool(opts.get("hist"))
    if opts.get("plot") is not None:
        from ..render.bars import log_scaled
        from ..render.plot import plot_histogram

        h = views.histogram
        title = f"lossctl {result.loss_name}: per-sample losses of {_input_name(opts, result.kind)} ({h.total} samples)"
        plot_histogram(Path(opts["plot"]), h, title, log=log_scaled(h.counts))
    return views


def _input_name(opts: dict[str, Any], kind: str) -> str:
    """``--logits batch.npy`` (a file by its name, a literal shortened) for a plot's title."""
    from ..io.sources import parse_source

    text = str(opts.get(kind) or "")
    source = parse_source(text)
    if source.path is not None:
        text = source.path.name + (f":{source.key}" if source.key else "")
    elif len(text) > 40:
        text = text[:37] + "..."
    return f"--{kind.replace('_', '-')} {text}"


def report_not_finite(call: dict[str, Any], result) -> None:
    """When the loss or a per-sample value is NaN or infinite: the first samples and the cause, on stderr."""
    from ..core.triage import why_not_finite
    from ..render.triage import not_finite_lines

    report = why_not_finite(call, result)
    if report is None:
        return
    from .options import spell

    lines = [spell(line) for line in not_finite_lines(report, result.loss_name)]
    try:
        sys.stderr.write("".join(f"warning: {line}\n" for line in lines))
    except (OSError, ValueError):
        pass


def json_parts(views: Views | None) -> dict[str, Any]:
    from ..render.triage import histogram_document, top_document

    if views is None:
        return {}
    parts: dict[str, Any] = {}
    if views.top is not None:
        parts["top"] = top_document(views.top)
    if views.show_histogram:
        parts["histogram"] = histogram_document(views.histogram)
    return parts


def write_plain(out, views: Views | None) -> None:
    if views is None:
        return
    from ..render.triage import write_histogram_plain, write_top_plain

    if views.top is not None:
        write_top_plain(out, views.top)
    if views.show_histogram:
        write_histogram_plain(out, views.histogram)


def write_csv(out, views: Views | None) -> bool:
    """The view's CSV table, when one is asked for (True: written)."""
    if views is None:
        return False
    from ..render.triage import write_histogram_csv, write_top_csv

    if views.top is not None:
        write_top_csv(out, views.top)
        return True
    if views.show_histogram:
        write_histogram_csv(out, views.histogram)
        return True
    return False


def print_tables(console, views: Views | None, loss_name: str) -> None:
    if views is None:
        return
    from ..render import table

    if views.top is not None:
        console.print(table.top(views.top, loss_name))
    if views.show_histogram:
        console.print(table.loss_histogram(views.histogram, loss_name))
