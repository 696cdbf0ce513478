"""``python -m lossctl`` and the ``lossctl`` command.

Until the program's own handlers are in place (:func:`lossctl.cli.app.entry` installs them
first thing), Ctrl-C or SIGTERM while Python is still importing ends the program at once
with one line and the usual code (130, 143): nothing has been written yet.
"""

import os
import signal


def _stopped_while_starting(signum, frame):
    os.write(2, b"error: interrupted\n" if signum == signal.SIGINT else b"error: terminated\n")
    os._exit(128 + signum)


signal.signal(signal.SIGINT, _stopped_while_starting)
signal.signal(signal.SIGTERM, _stopped_while_starting)

from lossctl.cli.app import entry  # noqa: E402  (after the handlers, on purpose)

if __name__ == "__main__":
    entry()
