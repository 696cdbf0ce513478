"""Text bars for histograms (no rich): lengths in character cells, log-scaled when counts span decades."""

from __future__ import annotations

import math

_EIGHTHS = " ▏▎▍▌▋▊▉"
#: Counts are drawn on a log scale when the largest is at least this many times the smallest nonzero one.
LOG_SCALE_RATIO = 100


def log_scaled(counts: list[int]) -> bool:
    """Whether bars for ``counts`` are drawn on a log scale (their range is wide)."""
    nonzero = [c for c in counts if c > 0]
    return bool(nonzero) and max(nonzero) >= LOG_SCALE_RATIO * min(nonzero)


def bars(counts: list[int], width: int = 40, log: bool | None = None) -> list[str]:
    """One bar per count, the longest ``width`` cells: linear, ``c / max``; log, ``log(1+c) / log(1+max)``.
    A nonzero count always shows at least a sliver."""
    log = log_scaled(counts) if log is None else log
    top = max(counts, default=0)
    out = []
    for c in counts:
        if c <= 0 or top <= 0:
            out.append("")
            continue
        frac = math.log1p(c) / math.log1p(top) if log else c / top
        eighths = max(1, round(frac * width * 8))
        out.append("█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else ""))
    return out
