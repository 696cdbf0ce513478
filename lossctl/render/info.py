"""``lossctl info``'s output: the information measures (:class:`lossctl.core.information.InfoResult`) and
the self-information of events, as plain lines, JSON, CSV or tables."""

from __future__ import annotations

from typing import Any, TextIO

from . import jsonable, number
from .numbers import difference, table_number


def document(result) -> dict[str, Any]:
    """The JSON object of ``lossctl info --json``."""
    doc: dict[str, Any] = {
        "base": result.base,
        "unit": result.unit,
        "rows": result.rows,
        "classes": result.classes,
        "per_row": {k: jsonable(v) for k, v in result.per_row.items()},
        "mean": {k: number(v) for k, v in result.mean.items()},
    }
    if result.identity_holds is not None:
        doc["identity"] = {
            "formula": "H(P,Q) = H(P) + KL(P‖Q)",
            "holds": result.identity_holds,
            "max_abs_residual": number(result.max_abs_residual),
        }
    return doc


def write_info(out: TextIO, fmt: str, result, rows: int) -> None:
    """The measures in ``fmt`` (json, plain, csv, table); ``rows`` rows of the per-row table."""
    if fmt == "json":
        from .text import write_json

        write_json(out, document(result))
    elif fmt == "plain":
        for label, value in result.mean.items():
            out.write(f"{label} {value!r}\n")
    elif fmt == "csv":
        _write_csv(out, result)
    else:
        _table(out, result, rows)


def _write_csv(out: TextIO, result) -> None:
    import csv

    w = csv.writer(out, lineterminator="\n")
    labels = list(result.per_row)
    w.writerow(["row", *labels])
    for i in range(result.rows):
        w.writerow([i, *(repr(float(result.per_row[k][i])) for k in labels)])


def _table(out: TextIO, result, rows: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, highlight=False)
    console.print(Text(f"lossctl info: {result.rows} row{'s' if result.rows != 1 else ''}, {result.classes} classes, "
                       f"{result.unit} (base {result.base})", style="bold"))
    t = Table()
    t.add_column("measure", style="bold")
    t.add_column("mean over rows" if result.rows > 1 else "value", justify="right")
    for label, value in result.mean.items():
        t.add_row(label, Text(table_number(value), style="green"))
    console.print(t)

    shown = min(rows, result.rows)
    if shown and result.rows > 1:
        more = result.rows - shown
        r = Table(title="per row", title_justify="left",
                  caption=f"… {more} more row{'s' if more != 1 else ''} (--rows)" if more else None, caption_justify="left")
        r.add_column("row", justify="right")
        for label in result.per_row:
            r.add_column(label, justify="right", no_wrap=True)
        for i in range(shown):
            r.add_row(str(i), *(table_number(result.per_row[k][i]) for k in result.per_row))
        console.print(r)
    if result.identity_holds is not None:
        verdict = Text("holds", style="green") if result.identity_holds else Text("FAILS", style="bold red")
        console.print(Text.assemble("H(P,Q) = H(P) + KL(P‖Q): ", verdict,
                                    f", max |residual| {difference(result.max_abs_residual)} (row {result.worst_row})"))


def write_events(out: TextIO, fmt: str, base: str, probs, values, rows: int) -> None:
    """The self-information of each event (``--event-probs``) in ``fmt``."""
    import numpy as np

    from ..core import information as infolib

    unit = infolib.BASES[base][1]
    if fmt == "json":
        from .text import write_json

        write_json(out, {"base": base, "unit": unit, "event_probs": jsonable(np.asarray(probs, dtype=np.float64)),
                         "self_information": jsonable(values)})
        return
    flat_p = np.asarray(probs, dtype=np.float64).reshape(-1)
    flat_i = np.asarray(values).reshape(-1)
    if fmt == "plain":
        for v in flat_i:
            out.write(f"{float(v)!r}\n")
        return
    if fmt == "csv":
        out.write("event,p,I(p)\n")
        for k, (pv, iv) in enumerate(zip(flat_p, flat_i)):
            out.write(f"{k},{float(pv)!r},{float(iv)!r}\n")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    shown = min(max(rows, 1), flat_i.size)
    more = flat_i.size - shown
    console = Console(file=out, highlight=False)
    console.print(Text(f"lossctl info: self-information -log p of {flat_i.size} event{'s' if flat_i.size != 1 else ''}, "
                       f"{unit} (base {base})", style="bold"))
    t = Table(caption=f"… {more} more event{'s' if more != 1 else ''} (--rows)" if more else None, caption_justify="left")
    t.add_column("event", justify="right")
    t.add_column("p", justify="right")
    t.add_column(f"I(p), {unit}", justify="right")
    for k in range(shown):
        t.add_row(str(k), table_number(flat_p[k]), table_number(flat_i[k]))
    console.print(t)
