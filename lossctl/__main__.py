"""``python -m lossctl`` and the ``lossctl`` command (see :func:`lossctl.cli.app.entry`)."""

from lossctl.cli.app import entry

if __name__ == "__main__":
    entry()
