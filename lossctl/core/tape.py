"""A small reverse-mode differentiator for the kernels of other frameworks' conventions.

Keras and optax differentiate their losses with their backend's autodiff: the
gradient of a clipped probability is zero outside the clip, the gradient of
``max`` goes to the maximum. A convention's kernel is written once, on
:class:`Var` values, and the tape gives its value, its gradient (as PyTorch's
autograd, Keras's torch backend, gives it) and its derivation (the steps the
kernel records with :meth:`Tape.step`). Pure NumPy.

Subgradients follow torch: ``|x|'(0) = 0``, ``clamp`` passes the gradient on
the closed interval, ``maximum`` of two equal values splits it in halves,
``relu'(0) = 0``, ``max`` along an axis shares it among the tied maxima.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .numerics import log_sigmoid, log_softmax, logsumexp, sigmoid, softplus, sum_to_shape


class Var:
    """An array and how to send a gradient back to the values it was computed from."""

    __slots__ = ("value", "parents")
    __array_ufunc__ = None  # ndarray ⊕ Var defers to Var's reflected operators

    def __init__(self, value: Any, parents: tuple = ()):
        self.value = np.asarray(value)
        self.parents = parents  # ((Var, vjp: g -> gradient for that Var), ...)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def dtype(self):
        return self.value.dtype

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return add(self, neg(lift(other, self)))

    def __rsub__(self, other):
        return add(other, neg(self))

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __neg__(self):
        return neg(self)

    def __pow__(self, exponent):
        return power(self, exponent)


def lift(x: Any, like: Var | None = None) -> Var:
    """A constant as a Var; Python scalars take ``like``'s dtype (as a framework's weak scalars do)."""
    if isinstance(x, Var):
        return x
    if like is not None and np.ndim(x) == 0 and isinstance(x, (int, float)):
        return Var(like.dtype.type(x))
    return Var(x)


def _unary(x: Var, value: np.ndarray, vjp: Callable[[np.ndarray], np.ndarray]) -> Var:
    return Var(value, ((x, vjp),))


def custom(x: Var, value: np.ndarray, vjp: Callable[[np.ndarray], np.ndarray]) -> Var:
    """An operation given by its value and its vector-Jacobian product ``vjp(g) -> ∂/∂x``
    (a loss whose own kernels already give both, such as CTC's forward–backward)."""
    return _unary(lift(x), np.asarray(value), vjp)


def _binary(a: Var, b: Var, value: np.ndarray, vjp_a, vjp_b) -> Var:
    shape = value.shape
    return Var(value, ((a, lambda g: sum_to_shape(np.broadcast_to(vjp_a(g), shape), a.shape)),
                       (b, lambda g: sum_to_shape(np.broadcast_to(vjp_b(g), shape), b.shape))))


def add(a, b) -> Var:
    a = lift(a, b if isinstance(b, Var) else None)
    b = lift(b, a)
    return _binary(a, b, a.value + b.value, lambda g: g, lambda g: g)


def neg(a: Var) -> Var:
    return _unary(a, -a.value, lambda g: -g)


def mul(a, b) -> Var:
    a = lift(a, b if isinstance(b, Var) else None)
    b = lift(b, a)
    return _binary(a, b, a.value * b.value, lambda g: g * b.value, lambda g: g * a.value)


def div(a, b) -> Var:
    a = lift(a, b if isinstance(b, Var) else None)
    b = lift(b, a)
    out = a.value / b.value
    return _binary(a, b, out, lambda g: g / b.value, lambda g: -g * out / b.value)


def power(a: Var, exponent: float) -> Var:
    e = a.dtype.type(exponent)
    return _unary(a, a.value ** e, lambda g: g * e * a.value ** (e - 1))


def square(a: Var) -> Var:
    return _unary(a, a.value * a.value, lambda g: 2 * g * a.value)


def sqrt(a: Var) -> Var:
    out = np.sqrt(a.value)
    return _unary(a, out, lambda g: g / (2 * out))


def log(a: Var) -> Var:
    return _unary(a, np.log(a.value), lambda g: g / a.value)


def log1p(a: Var) -> Var:
    return _unary(a, np.log1p(a.value), lambda g: g / (1 + a.value))


def exp(a: Var) -> Var:
    out = np.exp(a.value)
    return _unary(a, out, lambda g: g * out)


def absolute(a: Var) -> Var:
    return _unary(a, np.abs(a.value), lambda g: g * np.sign(a.value))


def clip(a: Var, lo: Any, hi: Any) -> Var:
    """torch.clamp: the gradient passes where lo ≤ a ≤ hi."""
    lo = a.dtype.type(lo) if lo is not None else None
    hi = a.dtype.type(hi) if hi is not None else None
    out = np.clip(a.value, lo, hi)
    inside = np.ones(a.shape, dtype=bool)
    if lo is not None:
        inside &= a.value >= lo
    if hi is not None:
        inside &= a.value <= hi
    return _unary(a, out, lambda g: np.where(inside, g, 0))


def maximum(a, b) -> Var:
    """torch.maximum: the larger one gets the gradient; equal values share it in halves."""
    a = lift(a, b if isinstance(b, Var) else None)
    b = lift(b, a)
    av, bv = a.value, b.value
    share_a = np.where(av > bv, 1.0, np.where(av == bv, 0.5, 0.0)).astype(np.result_type(av, bv))
    return _binary(a, b, np.maximum(av, bv), lambda g: g * share_a, lambda g: g * (1 - share_a))


def minimum(a, b) -> Var:
    return neg(maximum(neg(lift(a, b if isinstance(b, Var) else None)), neg(lift(b, a if isinstance(a, Var) else None))))


def relu(a: Var) -> Var:
    """jax.nn.relu: relu'(0) = 0."""
    return _unary(a, np.maximum(a.value, 0), lambda g: np.where(a.value > 0, g, 0))


def where(cond: np.ndarray, a, b) -> Var:
    a = lift(a, b if isinstance(b, Var) else None)
    b = lift(b, a)
    cond = np.asarray(cond, dtype=bool)
    return _binary(a, b, np.where(cond, a.value, b.value), lambda g: np.where(cond, g, 0), lambda g: np.where(cond, 0, g))


def total(a: Var, axis: int | tuple | None = None, keepdims: bool = False) -> Var:
    out = np.sum(a.value, axis=axis, keepdims=keepdims)

    def vjp(g):
        if axis is not None and not keepdims:
            g = np.expand_dims(g, axis)
        return np.broadcast_to(g, a.shape)

    return _unary(a, out, vjp)


def mean(a: Var, axis: int | tuple | None = None, keepdims: bool = False) -> Var:
    count = a.value.size if axis is None else int(np.prod([a.shape[i] for i in np.atleast_1d(axis)]))
    return div(total(a, axis, keepdims), a.dtype.type(count))


def amax(a: Var, axis: int, keepdims: bool = False) -> Var:
    """max along an axis; tied maxima share the gradient equally."""
    m = np.max(a.value, axis=axis, keepdims=True)
    hit = a.value == m
    share = hit / np.sum(hit, axis=axis, keepdims=True)
    out = m if keepdims else np.squeeze(m, axis)
    return _unary(a, out, lambda g: (g if keepdims else np.expand_dims(g, axis)) * share)


def take(a: Var, index: np.ndarray, axis: int) -> Var:
    """``a`` at ``index`` along ``axis`` (index has a's shape without that axis)."""
    idx = np.expand_dims(index, axis)
    out = np.take_along_axis(a.value, idx, axis=axis).squeeze(axis)

    def vjp(g):
        full = np.zeros(a.shape, dtype=np.result_type(a.dtype, g.dtype))
        np.put_along_axis(full, idx, np.expand_dims(g, axis), axis=axis)
        return full

    return _unary(a, out, vjp)


def cast(a: Var, dtype) -> Var:
    return _unary(a, a.value.astype(dtype), lambda g: g.astype(a.dtype))


def softplus_(a: Var) -> Var:
    return _unary(a, softplus(a.value), lambda g: g * sigmoid(a.value))


def sigmoid_(a: Var) -> Var:
    out = sigmoid(a.value)
    return _unary(a, out, lambda g: g * out * (1 - out))


def log_sigmoid_(a: Var) -> Var:
    return _unary(a, log_sigmoid(a.value), lambda g: g * sigmoid(-a.value))


def log_softmax_(a: Var, axis: int) -> Var:
    out = log_softmax(a.value, axis=axis)
    return _unary(a, out, lambda g: g - np.exp(out) * np.sum(g, axis=axis, keepdims=True))


def softmax_(a: Var, axis: int) -> Var:
    return exp(log_softmax_(a, axis))


def logsumexp_(a: Var, axis: int, keepdims: bool = False) -> Var:
    out = logsumexp(a.value, axis=axis, keepdims=True)
    soft = np.exp(a.value - out)
    return _unary(a, out if keepdims else np.squeeze(out, axis),
                  lambda g: (g if keepdims else np.expand_dims(g, axis)) * soft)


def logaddexp(a: Var, b: Var) -> Var:
    out = np.logaddexp(a.value, b.value)
    return _binary(a, b, out, lambda g: g * np.exp(a.value - out), lambda g: g * np.exp(b.value - out))


def gradient(out: Var, leaves: dict[str, Var], seed: np.ndarray | float = 1.0) -> dict[str, np.ndarray]:
    """d(seed·out)/d(leaf) for each named leaf (zeros where the leaf does not reach ``out``)."""
    order: list[Var] = []
    seen: set[int] = set()
    stack: list[tuple[Var, bool]] = [(out, False)]
    while stack:  # iterative post-order: a kernel may chain more ops than Python's recursion limit
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p, _ in node.parents if id(p) not in seen)
    leaf_ids = {id(v) for v in leaves.values()}
    grads: dict[int, np.ndarray] = {id(out): np.broadcast_to(np.asarray(seed, dtype=out.dtype), out.shape)}
    found: dict[int, np.ndarray] = {}
    for node in reversed(order):  # children before parents: each node's gradient is complete when reached
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if id(node) in leaf_ids:
            found[id(node)] = g
        for parent, vjp in node.parents:
            contribution = vjp(g)
            grads[id(parent)] = grads[id(parent)] + contribution if id(parent) in grads else contribution
    return {name: np.array(np.broadcast_to(found.get(id(v), 0), v.shape), dtype=v.dtype) for name, v in leaves.items()}


@dataclass
class Recorded:
    """One step of a convention's derivation, over the whole batch."""

    key: str  # what kind of step: "cast", "clip", "renormalise", "smooth", "log", "loss", ...
    label: str
    formula: str
    value: np.ndarray
    before: np.ndarray | None = None  # the value the step changed (for "where do two conventions part")
    reason: str = ""  # in words, for compare: "keras clips p to [1e-7, 1 − 1e-7]"
    input_name: str = ""  # the symbol the reason names ("p")


class Tape:
    """Collects a kernel's derivation steps; a kernel calls :meth:`step` at each stage."""

    def __init__(self):
        self.steps: list[Recorded] = []

    def step(self, key: str, label: str, formula: str, v: Var | np.ndarray, *, before: Any = None,
             reason: str = "", symbol: str = "") -> Var | np.ndarray:
        value = v.value if isinstance(v, Var) else np.asarray(v)
        prior = before.value if isinstance(before, Var) else (None if before is None else np.asarray(before))
        self.steps.append(Recorded(key, label, formula, value, prior, reason, symbol))
        return v
