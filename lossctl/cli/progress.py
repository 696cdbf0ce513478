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


class _Bar:
    def __init__(self, delay: float, stream):
        self.stream = stream
        self.start = time.monotonic()
        self.delay = delay
        self.progress = None
        self.task = None

    def update(self, done: int, total: int) -> None:
        if self.progress is None:
            if time.monotonic() - self.start < self.delay or done >= total:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("lossctl"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                                     console=Console(file=self.stream), transient=True)
            self.progress.start()
            self.task = self.progress.add_task("rows", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextlib.contextmanager
def progress_bar(delay: float = DELAY, stream=None):
    """``with progress_bar() as progress:`` → ``progress(done_rows, total_rows)`` or None."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        yield None
        return
    bar = _Bar(delay, stream)
    try:
        yield bar.update
    finally:
        bar.close()
