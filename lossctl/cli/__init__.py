"""The command line: a thin layer that wires readers, ``lossctl.compute`` and renderers."""
