"""The settings a call ran with (tolerances, dtype, format, ...) and where each came from:
the command line, the project's configuration file, or lossctl's default."""

from __future__ import annotations

from typing import Any, Mapping

Settings = Mapping[str, "tuple[Any, str]"]  # key -> (value, origin)


def _shown(settings: Settings) -> list[tuple[str, Any, str]]:
    return [(k, v, origin) for k, (v, origin) in settings.items() if v is not None]


def settings_document(settings: Settings) -> dict[str, dict[str, Any]]:
    """JSON: ``{"rtol": {"value": 1e-07, "from": "default"}, ...}``."""
    return {k: {"value": v, "from": origin} for k, v, origin in _shown(settings)}


def settings_lines(settings: Settings) -> list[str]:
    """Plain text: ``# settings`` and one ``key = value (origin)`` line per setting."""
    rows = _shown(settings)
    return ["# settings"] + [f"{k} = {v} ({origin})" for k, v, origin in rows] if rows else []


def settings_table(settings: Settings):
    """A rich table of the settings (key, value, from)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="settings", title_justify="left")
    for head in ("setting", "value", "from"):
        table.add_column(head, overflow="fold")
    for k, v, origin in _shown(settings):
        table.add_row(k, escape(str(v)), escape(origin))
    return table
