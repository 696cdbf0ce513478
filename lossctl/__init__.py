"""lossctl: compute, explain and verify loss values exactly as PyTorch does.

The public Python API:

* :func:`compute` (``compute({"loss": "ce", "logits": ..., "target": ...})``) -> :class:`Result`
* :func:`registry` (every loss's :class:`~lossctl.core.registry.LossSpec`) and :func:`registry_names`
* the errors: :class:`LossctlError` and its :class:`UsageError` / :class:`InputError`, whose
  :class:`ExitCode` the command line exits with

    >>> import lossctl
    >>> lossctl.compute({"loss": "ce", "logits": [[10, 0, -10], [8, 8, 8]], "target": [0, 2]}).loss
    0.5493288448141933
"""

from __future__ import annotations

from .errors import ExitCode, InputError, LossctlError, UsageError

__version__ = "0.1.0"

_API = ("compute", "registry", "registry_names", "Result")


def __getattr__(name: str):
    # The API (and numpy) is imported on first use: the command line installs its signal
    # handlers before the heavy imports, and ``import lossctl`` stays cheap.
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["compute", "registry", "registry_names", "Result", "ExitCode", "LossctlError", "UsageError", "InputError", "__version__"]
