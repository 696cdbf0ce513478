"""The data of a check suite: :class:`Suite`, its :class:`Case` objects and their expected :class:`Quantity` values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.expectations import DEFAULT_ATOL, DEFAULT_RTOL
from ..core.registry import LossSpec


@dataclass
class Quantity:
    """One expected quantity of a case: ``key`` is ``loss``, ``per_sample`` or ``grad.NAME``."""

    key: str
    value: Any  # as written: a number, a (nested) list, or a source string
    node: Any = None  # the YAML node it was read from (for --update)


@dataclass
class Case:
    index: int  # 0-based position in the suite's ``cases``
    name: str
    line: int  # 1-based line of the case in the suite file
    spec: LossSpec
    call: dict[str, Any]  # loss, inputs, parameters, reduction, dtype, dim: as written (sources unread)
    expect: dict[str, Quantity] = field(default_factory=dict)
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    per_sample: bool = False  # pin per-sample values when --update adds an expectation
    grad: bool = False  # pin gradients when --update adds an expectation
    node: Any = None  # the case's YAML mapping node
    expect_node: Any = None  # the value node of ``expect`` (None when absent)
    named: bool = True  # False when the name was generated

    @property
    def kind(self) -> str | None:
        """The prediction kind the case gives (``logits``, ``probs``, ...)."""
        for k in self.spec.prediction_kinds:
            if self.call.get(k) is not None:
                return k
        return None

    @property
    def array_keys(self) -> tuple[str, ...]:
        names = set(self.spec.prediction_kinds) | set(self.spec.inputs) | {"sample_weight"} \
            | {p.name for p in (*self.spec.params, *self.spec.extra_params) if p.kind == "array"}
        return tuple(k for k in self.call if k in names)


@dataclass
class Suite:
    path: Path
    name: str
    cases: list[Case]
    text: str = ""
    root: Any = None  # the YAML root node
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    bom: bool = False  # the file starts with a UTF-8 byte order mark (kept by --update)

    @property
    def base(self) -> Path:
        return self.path.parent

