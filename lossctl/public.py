"""The public Python API: :func:`compute` (which also reads sources given as strings), the
registry and :class:`Result`.

A string given for an array key is a source, as in a check suite and on the command line: a
path (``"logits.npy"``, relative to the current directory), ``"FILE:KEY"``
(``"batch.npz:logits"``, ``"data.csv:score"``), or an inline literal (``"[[1, 2], [3, 4]]"``).
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from .api import Result, registry, registry_names
from .api import compute as _compute_arrays  # noqa: the arrays-only entry, wrapped below
from .core.call import array_keys
from .errors import UsageError

__all__ = ["compute", "registry", "registry_names", "Result"]

# compute()'s own options (everything else is a key of the call)
_OPTIONS = frozenset(p for p in inspect.signature(_compute_arrays).parameters if p not in ("case", "kwargs"))


def compute(case: Mapping[str, Any] | None = None, /, *, grad: bool = False, explain: bool = False, rows: int = 3,
            **kwargs: Any) -> Result:
    """Compute a loss call: ``compute({"loss": "ce", "logits": ..., "target": ...})`` or
    ``compute(loss="ce", logits=..., target=...)``.

    Array keys take arrays, nested lists, numbers, or strings naming a source (a path,
    ``FILE:KEY`` or an inline literal). Only the loss and its per-sample values are computed
    (in one pass) unless ``grad=True`` asks for the gradients too. The other options are
    :func:`lossctl.api.compute`'s (``stream``, ``block_rows``, ``progress``, ...).

    >>> compute(loss="ce", logits="[[10, 0, -10], [8, 8, 8]]", target=[0, 2]).loss
    0.5493288448141933
    """
    call = dict(case or {})
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in _OPTIONS}
    call.update(kwargs)
    if "loss" not in call:
        raise UsageError("missing the loss name ('loss')")
    spec = registry().get(str(call["loss"]))
    sources = {k for k in (*array_keys(spec), *spec.inputs) if isinstance(call.get(k), str)}
    if sources:
        from .io.source_reader import SourceReader

        reader = SourceReader(stdin_refusal="standard input is read by the command line only; pass the array")
        for key in sorted(sources):
            call[key] = reader.read(key, call[key], lazy=False)
        options.setdefault("origins", reader.origins)
    return _compute_arrays(call, grad=grad, explain=explain, rows=rows, **options)
