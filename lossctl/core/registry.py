"""The loss registry: how a loss is declared, once.

A :class:`LossSpec` holds everything about one loss: its name and aliases,
the prediction kinds it accepts (and how the others convert to its native
kind), its parameters with defaults and help, and its kernels. The CLI
commands, ``lossctl list``, the check runner and the parametrised tests are all
generated from the specs in :data:`lossctl.losses.ALL_SPECS`.

Kernel protocol (pure NumPy, no I/O):

* ``forward(x, params) -> Forward``: ``x`` maps input names to arrays in the
  canonical layout (class axis 1 for class losses), ``params`` maps parameter
  names to values. ``Forward.values`` are the ``reduction='none'`` values;
  ``Forward.denominator`` the per-value weights whose sum ``'mean'`` divides by
  (``None`` means the number of values).
* ``backward(x, params, upstream) -> {name: grad}``: the gradient of
  ``upstream · Σ values`` with respect to each native prediction input.
  ``upstream`` is the scalar the reduction multiplies by (``1/D`` for mean),
  passed in so that a kernel can reproduce PyTorch's exact NaN/zero pattern
  when ``D = 0``. When the forward gives ``Forward.mean_divisor``, ``'mean'``
  passes an array instead: ``1/(D·divisor)``, one factor per value.
* ``steps(x, params) -> [Step]``: the derivation for the first few samples,
  ``x`` holding one row per shown sample (``LossSpec.sample_rows`` picks them
  for losses whose samples are not single elements or class vectors).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import UsageError, ref

PREDICTION_KINDS = ("logits", "probs", "log_probs", "pred")
TARGET = "target"


@dataclass(frozen=True)
class Param:
    """One loss parameter: ``name`` is the snake-case key (the CLI spells it in kebab case)."""

    name: str
    kind: str  # "float" | "int" | "bool" | "choice" | "array"
    default: Any
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``value`` has one entry per shown sample when ``per_sample``."""

    label: str
    formula: str
    value: Any
    per_sample: bool = True
    note: str = ""


@dataclass(frozen=True)
class Forward:
    values: np.ndarray
    denominator: np.ndarray | None = None
    # Per-value divisors applied before 'mean' averages (Σ (values / mean_divisor) / D):
    # torch's CTC divides each loss by its clamped target length. 'sum' and 'none' ignore it.
    mean_divisor: np.ndarray | None = None


@dataclass(frozen=True)
class Conversion:
    """Turns a prediction kind into the loss's native kind, with its vector-Jacobian product.

    ``forward(a) -> b`` and ``vjp(a, b, g) -> ∂/∂a`` act on the canonical
    layout (class axis 1, or 0 for a 1-D array).
    """

    source: str
    target: str
    formula: str
    forward: Callable[[np.ndarray], np.ndarray]
    vjp: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    steps: Callable[[np.ndarray], list[Step]] | None = None
    # The conversion mixes the entries of a class vector (log_softmax), not one element at a
    # time: a 1-D input is then one sample, not a batch (lossctl.core.stream does not split it).
    along_classes: bool = False


FRAMEWORKS = ("torch", "keras", "optax", "sklearn")
FRAMEWORK_NAMES = {"torch": "PyTorch", "keras": "Keras", "optax": "optax", "sklearn": "scikit-learn"}


@dataclass(frozen=True)
class Convention:
    """How one framework defines a loss: its kernel, the kinds and parameters it takes, how it reduces.

    ``kernel(tape, x, params) -> Var`` gives the framework's per-sample values (after its own
    inner reduction, e.g. Keras's mean over the last axis) from traced inputs in lossctl's
    canonical layout, recording its derivation on the tape (:mod:`lossctl.core.tape`). ``kernel``
    None means the loss's own (PyTorch) kernels. ``difference`` is one line: what this
    framework does differently (the README's loss × framework table).
    """

    framework: str  # one of FRAMEWORKS
    mirrors: str  # the framework's own spelling: "keras.losses.BinaryCrossentropy"
    difference: str
    kernel: Callable[..., Any] | None = None
    kinds: tuple[str, ...] = ()  # prediction kinds the framework takes (empty: the loss's own)
    params: tuple[str, ...] = ()  # names of the loss's parameters the framework has
    extra_params: tuple[Param, ...] = ()  # parameters only this framework has (added to the loss's options)
    # Shape of the per-sample values: Keras reduces the last axis of an elementwise loss first
    # (a 1-D input counts as (N, 1): one sample per element); class losses reduce the class axis.
    validate: Callable[[dict, dict], None] | None = None
    reductions: tuple[str, ...] = ("mean", "sum", "none")
    # For ``lossctl compare`` on a convention without a tape (torch's own kernels):
    # departures(inputs, call) -> [(step key, reason, first index, "p = 0")] — its steps that
    # changed these inputs (torch's clamp of log 0 at −100).
    departures: Callable[[dict, dict], list] | None = None

    @property
    def differentiates(self) -> bool:
        """Keras and optax differentiate their losses; scikit-learn's metrics have no gradient."""
        return self.framework in ("torch", "keras", "optax")

    @property
    def sample_weight(self) -> bool:
        return self.framework in ("keras", "sklearn")

    @property
    def float32(self) -> bool:
        """Keras casts both inputs to floatx() = float32 unless the loss is built with dtype="float64"."""
        return self.framework == "keras"


def torch_convention(mirrors: str, difference: str = "the reference: lossctl's own kernels",
                     departures: Callable[[dict, dict], list] | None = None) -> Convention:
    """The PyTorch convention of a loss whose own kernels are PyTorch's."""
    return Convention("torch", mirrors, difference, departures=departures)


@dataclass(frozen=True)
class LossSpec:
    name: str
    mirrors: str
    summary: str
    formula: str
    kinds: Mapping[str, Conversion | None]  # accepted prediction kinds; None = native
    forward: Callable[[dict, dict], Forward]
    backward: Callable[[dict, dict, float], dict]
    steps: Callable[[dict, dict], list[Step]]
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    extra_inputs: tuple[str, ...] = ()  # further differentiable inputs, e.g. ("var",)
    target: str = "same"  # "class" | "index" | "same" | "broadcast" | "custom" (shape checked by validate) | "none"
    class_axis: bool = False  # inputs carry a class dimension (dim 1, or 0 when 1-D; --dim)
    class_kinds: tuple[str, ...] = ()  # with class_axis: the kinds that carry it (empty: every kind)
    reductions: tuple[str, ...] = ("mean", "sum", "none")
    validate: Callable[[dict, dict], None] | None = None
    # --explain: the native inputs as element-aligned arrays, for inputs whose
    # layout NumPy broadcasting alone does not express (gaussian-nll's per-sample var).
    align: Callable[[dict, dict], dict] | None = None
    # Non-differentiable array inputs besides the target, e.g. CTC's ("input_lengths",
    # "target_lengths"): required CLI/suite inputs, passed to the kernels as given
    # (numeric, not cast to the compute dtype); checked by validate.
    aux_inputs: tuple[str, ...] = ()
    # --explain: sample_rows(native, params, k) -> the inputs of the first k samples, one row
    # each, for losses whose sample is neither one element nor one class vector (pairs of
    # vectors, sequences). Replaces the default element/class-vector walk.
    sample_rows: Callable[[dict, dict, int], dict] | None = None
    # The prediction's axis along which samples lie: 0 for nearly every loss; 1 for CTC's
    # (T, N, C), which is not separable along axis 0. None: not separable at all.
    batch_axis: int | None = 0
    # Optional fast forward for the streaming engine (lossctl.core.stream), straight from a given
    # prediction kind: fused_forward(kind, x, params, raw, per_sample) -> Forward, or None when
    # it does not apply to this call (decided by kind, params and shapes alone, so the same for
    # every block). ``x`` holds the given (not converted) inputs in the compute dtype, canonical
    # layout, and the prepared target; ``raw`` the same blocks as the user gave them (e.g. float32
    # before the float64 cast); ``per_sample`` False when only the sum of the values is used
    # (a mean or sum, no per-sample output), so each value may be off in its last ulp or two.
    # Its values must equal ``forward`` after the conversion (ce --logits: only log_softmax at
    # the target class, not the whole (N, C) array).
    fused_forward: Callable[..., "Forward | None"] | None = None
    # Optional compiled forward for the streaming engine (lossctl.core.kernels):
    # compiled_forward(kind, raw, x, params, out) -> kernels.Block, or None when it does not
    # apply. ``raw`` is the prediction block as given (any float width, or bfloat16 bits), never
    # cast; ``x`` the prepared target and extra inputs; ``out`` a float64 buffer for the values.
    compiled_forward: Callable[..., Any] | None = None
    # Optional whole-call path for token batches (vocabulary last, streamed over blocks of rows
    # and of the vocabulary): token_path(arrays, params, reduction, dtype, dim, grad) -> a mapping
    # {loss, per_sample, grad, denominator} or None when it does not apply to this call.
    token_path: Callable[..., "Mapping[str, Any] | None"] | None = None
    input_help: Mapping[str, str] = field(default_factory=dict)  # CLI help for the loss's own input names
    notes: str = ""
    # Each framework that has this loss, by name; the torch entry (kernel None) is the spec's own
    # kernels. Losses torch lacks default to their home framework's convention.
    conventions: Mapping[str, Convention] = field(default_factory=dict)
    home: str = "torch"
    # A command of its own (``lm``, ``linear-ce``: token batches, computed by lossctl.tokens, not
    # the loss engine): its call takes its own inputs and parameters and, of the shared keys,
    # only those named here (None: a registry loss, every shared key that applies).
    command_keys: tuple[str, ...] | None = None
    # Other names of an input, accepted wherever the input is (lm's ``labels`` is also ``target``).
    input_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The help of a shared key, in this command's words (``grad``: "d(loss)/d(logits)").
    key_help: Mapping[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[str, ...]:
        """All array inputs in CLI order: prediction kinds, extra inputs, target, auxiliary inputs."""
        tail = (TARGET,) if self.target != "none" else ()
        return tuple(self.kinds) + self.extra_inputs + tail + self.aux_inputs

    @property
    def prediction_kinds(self) -> tuple[str, ...]:
        """Names that count as a prediction for this loss: the shared kinds, then the loss's own
        (e.g. ``x1`` or ``anchor``); exactly one of them is given in a call. A command of its
        own takes only its own."""
        if self.command_keys is not None:
            return tuple(self.kinds)
        return PREDICTION_KINDS + tuple(k for k in self.kinds if k not in PREDICTION_KINDS)

    def has_class_axis(self, kind: str) -> bool:
        """Whether inputs of prediction ``kind`` carry the class dimension."""
        return self.class_axis and (not self.class_kinds or kind in self.class_kinds)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def convention_names(self) -> tuple[str, ...]:
        """The frameworks that have this loss, in FRAMEWORKS order (torch alone when none is declared)."""
        return tuple(f for f in FRAMEWORKS if f in self.conventions) or ("torch",)

    def convention(self, framework: str) -> Convention:
        if framework not in FRAMEWORKS:
            raise UsageError(f"{ref('convention')}: expected one of {', '.join(FRAMEWORKS)}, got {framework!r}")
        if framework not in self.conventions:
            if framework == "torch" and not self.conventions:
                return torch_convention(self.mirrors)
            have = ", ".join(self.convention_names)
            raise UsageError(f"{self.name}: {FRAMEWORK_NAMES[framework]} has no such loss "
                             f"({ref('convention')} {framework}); the conventions that have it: {have}")
        return self.conventions[framework]

    @property
    def extra_params(self) -> tuple[Param, ...]:
        """Parameters that only some convention has (keras's label smoothing on bce, ...), once each."""
        seen = set(self.param_names)
        out = []
        for conv in self.conventions.values():
            for p in conv.extra_params:
                if p.name not in seen:
                    seen.add(p.name)
                    out.append(p)
        return tuple(out)

    @property
    def all_params(self) -> tuple[Param, ...]:
        """The loss's parameters, then those only some framework convention has."""
        return self.params + self.extra_params

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


# Parameters shared by many losses: one help text, one default, everywhere.
WEIGHT = Param("weight", "array", None, "Rescaling weight: one per class (C,) for class losses, broadcast to the input otherwise.")
IGNORE_INDEX = Param("ignore_index", "int", -100, "Target value that is ignored and does not count in the mean.")
LABEL_SMOOTHING = Param("label_smoothing", "float", 0.0, "Mix the target with the uniform distribution: (1-ε)·t + ε/C.")
POS_WEIGHT = Param("pos_weight", "array", None, "Weight of positive examples, broadcast from the trailing dimensions (C,).")
LOG_TARGET = Param("log_target", "bool", False, "The target is given as log-probabilities.")
# PyTorch's margin defaults differ per loss (1.0 for multi_margin/hinge_embedding/triplet,
# 0 for margin_ranking/cosine_embedding): use dataclasses.replace(MARGIN, default=...).
MARGIN = Param("margin", "float", 1.0, "Margin of the hinge.")

_KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class Registry:
    """Name and alias lookup over the specs; validates them on construction."""

    def __init__(self, specs: tuple[LossSpec, ...], reserved: frozenset[str] = frozenset()):
        """``reserved``: names no loss may take (the commands')."""
        self.specs = specs
        self._by_name: dict[str, LossSpec] = {}
        for spec in specs:
            if not spec.kinds:
                raise ValueError(f"{spec.name}: a loss needs at least one prediction kind")
            for name in (spec.name, *spec.aliases):
                if not _KEBAB.match(name) or name in reserved:
                    raise ValueError(f"invalid loss name {name!r}")
                if name in self._by_name:
                    raise ValueError(f"loss name {name!r} registered twice")
                self._by_name[name] = spec

    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def names_and_aliases(self) -> list[str]:
        """Every name a loss answers to."""
        return list(self._by_name)

    def find(self, name: str) -> LossSpec | None:
        """The loss called ``name`` (or aliased so), or None."""
        return self._by_name.get(name)

    def get(self, name: str) -> LossSpec:
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._by_name), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"unknown loss '{name}'{hint} Run 'lossctl list' for all losses.") from None
