"""A progress bar on stderr for long streamed calls (rich, imported only when one is drawn).

Shown when stderr is a terminal and the call has been running for about a second;
never otherwise (pipes, files, CI logs stay clean). It is transient: it disappears
when the call finishes, leaving stderr as it was.
"""

from __future__ import annotations

import contextlib
import sys
import time

DELAY = 1.0  # seconds before the bar appears


def remaining_seconds(done: int, total: int, elapsed_at_update: float, now: float) -> float | None:
    """Seconds left: the pace up to the last update, counted down since (so the estimate moves
    every refresh, not only when a block finishes); None before the first rows are done."""
    if done <= 0 or total <= 0:
        return None
    return max(0.0, elapsed_at_update * total / done - now)


def phase_label(label: str, phase: int) -> str:
    """What the bar shows before it: the call, and which pass over the rows this is."""
    return label if phase <= 1 else f"{label} (pass {phase})"


class _Bar:
    def __init__(self, delay: float, stream, label: str):
        self.stream = stream
        self.start = time.monotonic()
        self.delay = delay
        self.label = label
        self.progress = None
        self.task = None
        self.phase = 1
        self.last_done = 0

    def update(self, done: int, total: int) -> None:
        if done < self.last_done:  # the rows start over: the next pass (the gradient's)
            self.phase += 1
        self.last_done = done
        if self.progress is None:
            if time.monotonic() - self.start < self.delay or done >= total:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn
            from rich.text import Text

            class Eta(ProgressColumn):
                def render(self, task) -> Text:
                    left = remaining_seconds(int(task.completed), int(task.total or 0), task.fields.get("at", 0.0),
                                             task.elapsed or 0.0)
                    if left is None:
                        return Text("ETA -:--:--")
                    m, sec = divmod(int(left + 0.5), 60)
                    return Text(f"ETA {m // 60}:{m % 60:02d}:{sec:02d}")

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), Eta(),
                                     console=Console(file=self.stream), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(phase_label(self.label, self.phase), total=total, at=0.0)
        elapsed = self.progress.tasks[0].elapsed or 0.0
        self.progress.update(self.task, completed=done, total=total, at=elapsed,
                             description=phase_label(self.label, self.phase))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextlib.contextmanager
def progress_bar(delay: float = DELAY, stream=None, label: str = "lossctl"):
    """``with progress_bar(label="ce: values") as progress:`` → ``progress(done_rows, total_rows)`` or None."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        yield None
        return
    bar = _Bar(delay, stream, label)
    try:
        yield bar.update
    finally:
        bar.close()
