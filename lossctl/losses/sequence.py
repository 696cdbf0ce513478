"""Connectionist temporal classification (CTC), as ``torch.nn.functional.ctc_loss``.

Layout is torch's: log-probabilities ``(T, N, C)`` (time, batch, classes) or
``(T, C)`` for one unbatched sequence; the batch axis is 1, so CTC is not
separable along axis 0 (``batch_axis=1``). Targets are padded ``(N, S)`` or
concatenated 1-D ``(Σ target_lengths,)``; ``input_lengths`` and
``target_lengths`` are auxiliary (non-differentiable) integer inputs.

The forward–backward recursions run in log space over the extended label
sequence ``l' = (blank, l1, blank, l2, …, blank)`` exactly as ATen's
``LossCTC.cpp`` does (the same three-term log-sum-exp with a max shift), so
very long sequences neither underflow nor overflow.
"""

from __future__ import annotations

import numpy as np

from ..core import tape as T
from ..errors import InvalidInput, ref, spell_refs
from ..core.numerics import log_softmax
from ..core.registry import Convention, Conversion, Forward, LossSpec, Param, Step, torch_convention


# --------------------------------------------------------------------------- layout


def _lengths(a, n: int) -> np.ndarray:
    return np.asarray(a).reshape(-1).astype(np.int64)[:n]


def _padded_targets(target: np.ndarray, target_lengths: np.ndarray) -> np.ndarray:
    """Targets as an int64 (N, Lmax) array, whatever their layout (entries past a length are unused)."""
    t = np.asarray(target)
    n = target_lengths.size
    width = int(target_lengths.max()) if n else 0
    if t.ndim == 2:
        out = t[:, :width]
    else:  # concatenated (an unbatched 1-D target is the concatenation of one sequence)
        out = np.full((n, width), -1, dtype=t.dtype)
        offsets = np.concatenate([[0], np.cumsum(target_lengths)[:-1]]).astype(np.int64)
        for i in range(n):
            out[i, : target_lengths[i]] = t[offsets[i]: offsets[i] + target_lengths[i]]
    out = np.where(np.isfinite(out), out, -1)
    return out.astype(np.int64)


def _layout(x: dict):
    """(lp as (T, N, C), padded int targets (N, L), input lengths (N,), target lengths (N,), batched)."""
    lp = x["log_probs"]
    batched = lp.ndim == 3
    lp3 = lp if batched else lp[:, None, :]
    n = lp3.shape[1]
    il = _lengths(x["input_lengths"], n)
    tl = _lengths(x["target_lengths"], n)
    return lp3, _padded_targets(x["target"], tl), il, tl, batched


def _lse3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """log(eᵃ + eᵇ + eᶜ) with ATen's max shift (a shift of 0 when all three are −inf)."""
    m = np.maximum(np.maximum(a, b), c)
    m = np.where(m == -np.inf, 0.0, m).astype(a.dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.exp(a - m) + np.exp(b - m) + np.exp(c - m)) + m


class _Lattice:
    """The CTC lattice of a batch: extended labels, and log α / log β over (T, N, S')."""

    def __init__(self, lp3: np.ndarray, targets: np.ndarray, il: np.ndarray, tl: np.ndarray, blank: int):
        T, N, C = lp3.shape
        L = targets.shape[1]
        S = 2 * L + 1
        dtype = lp3.dtype
        ext = np.full((N, S), blank, dtype=np.int64)
        ext[:, 1::2] = np.where(targets >= 0, targets, blank)
        s_idx = np.arange(S)
        valid = s_idx[None, :] < (2 * tl + 1)[:, None]  # (N, S)
        ext = np.where(valid, ext, blank)
        # skip s−2 → s iff l'_s ≠ l'_{s−2} (ATen's test: never for blanks, never between repeats)
        skip = np.zeros((N, S), dtype=bool)
        skip[:, 2:] = ext[:, 2:] != ext[:, :-2]
        skip &= valid
        # lp at each extended label: (T, N, S)
        lpe = np.take_along_axis(lp3, np.broadcast_to(ext[None], (T, N, S)), axis=2)
        neg = np.full((N, S), -np.inf, dtype=dtype)

        alpha = np.full((T, N, S), -np.inf, dtype=dtype)
        if T:
            first = neg.copy()
            first[:, 0] = lpe[0, :, 0]
            if S > 1:
                first[:, 1] = np.where(tl > 0, lpe[0, :, 1], -np.inf)
            alpha[0] = np.where((il > 0)[:, None], first, -np.inf)
        for t in range(1, T):
            prev = alpha[t - 1]
            a2 = np.concatenate([neg[:, :1], prev[:, :-1]], axis=1)
            a3 = np.where(skip, np.concatenate([neg[:, :2], prev[:, :-2]], axis=1)[:, :S], -np.inf)
            new = np.where(valid, _lse3(prev, a2, a3) + lpe[t], -np.inf)
            alpha[t] = np.where((t < il)[:, None], new, -np.inf)

        beta = np.full((T, N, S), -np.inf, dtype=dtype)
        last = il - 1
        end = 2 * tl
        rows = np.arange(N)
        skip_back = np.zeros((N, S), dtype=bool)  # s → s+2 allowed iff l'_{s+2} ≠ l'_s
        skip_back[:, :-2] = skip[:, 2:]
        for t in range(T - 1, -1, -1):
            init = neg.copy()
            init[rows, np.minimum(end, S - 1)] = lpe[t, rows, np.minimum(end, S - 1)]
            has_label = tl > 0
            init[rows[has_label], end[has_label] - 1] = lpe[t, rows[has_label], end[has_label] - 1]
            if t + 1 < T:
                nxt = beta[t + 1]
                b2 = np.concatenate([nxt[:, 1:], neg[:, :1]], axis=1)
                b3 = np.where(skip_back, np.concatenate([nxt[:, 2:], neg[:, :2]], axis=1)[:, :S], -np.inf)
                new = np.where(valid, _lse3(nxt, b2, b3) + lpe[t], -np.inf)
            else:
                new = neg
            beta[t] = np.where((t == last)[:, None], init, np.where((t < last)[:, None], new, -np.inf))

        self.T, self.N, self.C, self.S = T, N, C, S
        self.ext, self.valid, self.skip = ext, valid, skip
        self.alpha, self.beta = alpha, beta
        self.il, self.tl = il, tl

    def nll(self) -> np.ndarray:
        """−log p(l | x) per sample (ATen: +inf where no alignment fits; −0.0 for empty input and target)."""
        out = np.empty(self.N, dtype=self.alpha.dtype)
        for n in range(self.N):
            T_n, L_n = int(self.il[n]), int(self.tl[n])
            if T_n == 0:
                out[n] = -(0.0 if L_n == 0 else -np.inf)
                continue
            if L_n == 0:
                out[n] = -self.alpha[T_n - 1, n, 0]
                continue
            l1 = self.alpha[T_n - 1, n, 2 * L_n]
            l2 = self.alpha[T_n - 1, n, 2 * L_n - 1]
            m = max(l1, l2)
            m = 0.0 if m == -np.inf else m
            with np.errstate(divide="ignore"):
                out[n] = -(np.log(np.exp(l1 - m) + np.exp(l2 - m)) + m)
        return out

    def log_occupancy(self) -> np.ndarray:
        """log Σ_{s: l'_s = c} α_t(s)·β_t(s) as (T, N, C) (−inf where no path visits c at t).

        β_t includes the frame's own lp, as in Graves and ATen, so α·β counts lp_t(c) twice."""
        T, N, C, S = self.T, self.N, self.C, self.S
        with np.errstate(invalid="ignore"):
            ab = self.alpha + self.beta
        ab = np.where(np.isnan(ab), -np.inf, ab)
        m = np.max(ab, axis=2, keepdims=True) if S else np.zeros((T, N, 1))
        m = np.where(m == -np.inf, 0.0, m)
        e = np.exp(ab - m)
        index = (np.arange(T)[:, None, None] * N + np.arange(N)[None, :, None]) * C + self.ext[None]
        acc = np.bincount(index.ravel(), weights=e.ravel(), minlength=T * N * C).reshape(T, N, C)
        with np.errstate(divide="ignore"):
            out = np.log(acc).astype(self.alpha.dtype, copy=False) + m
        # ATen quirk, reproduced: at the last frame it *assigns* α·β of s = 2L (the final blank) and
        # then of s = 2L−1 (the last label) to their classes, assuming they differ. When the last
        # label is the blank's index (torch documents targets must not be, but accepts them), the
        # second assignment overwrites the first instead of adding to it.
        for n in range(N):
            T_n, L_n = int(self.il[n]), int(self.tl[n])
            if T_n > 0 and L_n > 0 and self.ext[n, 2 * L_n - 1] == self.ext[n, 0]:
                out[T_n - 1, n, self.ext[n, 0]] = ab[T_n - 1, n, 2 * L_n - 1]
        return out

    def min_frames(self, targets: np.ndarray) -> np.ndarray:
        """The fewest frames an alignment needs: L + the number of adjacent repeats (a blank between)."""
        out = np.empty(self.N, dtype=np.int64)
        for n in range(self.N):
            seq = targets[n, : self.tl[n]]
            out[n] = seq.size + int(np.sum(seq[1:] == seq[:-1]))
        return out


# --------------------------------------------------------------------------- kernels


def ctc_forward(x: dict, params: dict) -> Forward:
    """CTC loss, as ``torch.nn.functional.ctc_loss``.

        l_n = −log Σ_{alignments π of l_n in T_n frames} Π_t exp(lp[t, n, π_t])
            = −log(α_{T_n−1}(S'−1) + α_{T_n−1}(S'−2)),  S' = 2·L_n + 1
        α_t(s) = (α_{t−1}(s) + α_{t−1}(s−1) + [l'_s ≠ l'_{s−2}]·α_{t−1}(s−2))·exp(lp[t, n, l'_s])
    An impossible alignment (T_n < L_n + repeats) gives +inf; 0 with --zero-infinity.
    'mean' is torch's: mean over the batch of l_n / max(L_n, 1) (Forward.mean_divisor); 'sum' has
    no length division.
    """
    lp3, targets, il, tl, batched = _layout(x)
    lattice = _Lattice(lp3, targets, il, tl, int(params.get("blank", 0)))
    nll = lattice.nll()
    if params.get("zero_infinity", False):
        nll = np.where(nll == np.inf, np.zeros_like(nll), nll)
    divisor = np.maximum(tl, 1).astype(lp3.dtype)
    if not batched:
        return Forward(nll.reshape(()), mean_divisor=divisor.reshape(()))
    return Forward(nll, mean_divisor=divisor)


def ctc_backward(x: dict, params: dict, upstream) -> dict:
    """torch's CTC gradient w.r.t. ``log_probs`` (LossCTC.cpp, ``ctc_loss_backward_cpu``):

        grad[t, n, c] = (exp(lp[t, n, c]) − exp(log Σ_{s: l'_s = c} α_t(s)β_t(s) + l_n − lp[t, n, c]))·u_n

    for t < T_n, and 0 for t ≥ T_n. That is softmax − occupancy: the gradient with respect to the
    *logits* of a log_softmax, NOT the partial derivative of the loss with respect to lp (which is
    −occupancy). The two agree after a log_softmax in the graph, because Σ_c (exp(lp) − occupancy) = 0
    there (see pytorch issues #52241 and #82545). lossctl reproduces torch, so
    ``--grad`` for ``--log-probs`` is torch's number; ``--logits`` gives the exact logits gradient.
    An infeasible sample (l_n = inf) gets NaN at t < T_n, as torch does; with --zero-infinity
    its whole gradient is 0. ``u_n`` is the upstream factor: 1/(N·max(L_n, 1)) for 'mean'.
    A target whose last label is the blank's index (torch documents this as invalid but accepts
    it) gets torch's last-frame bookkeeping too (see ``_Lattice.log_occupancy``).
    """
    lp3, targets, il, tl, batched = _layout(x)
    lattice = _Lattice(lp3, targets, il, tl, int(params.get("blank", 0)))
    nll = lattice.nll()
    lcab = lattice.log_occupancy()
    u = np.broadcast_to(np.asarray(upstream, dtype=lp3.dtype).reshape(-1), (lattice.N,))
    with np.errstate(invalid="ignore", over="ignore"):
        grad = (np.exp(lp3) - np.exp(lcab + nll[None, :, None] - lp3)) * u[None, :, None]
    active = np.arange(lattice.T)[:, None] < il[None, :]  # (T, N)
    grad = np.where(active[:, :, None], grad, 0.0)
    if params.get("zero_infinity", False):
        grad = np.where((nll == np.inf)[None, :, None], 0.0, grad)
    grad = grad.astype(lp3.dtype, copy=False)
    return {"log_probs": grad if batched else grad[:, 0, :]}


def _ctc_rows(x: dict, params: dict, k: int) -> dict:
    """The first k sequences, batched, with padded targets (−1 past each length)."""
    lp3, targets, il, tl, _ = _layout(x)
    return {"log_probs": lp3[:, :k], "target": targets[:k], "input_lengths": il[:k], "target_lengths": tl[:k]}


def ctc_steps(x: dict, params: dict) -> list[Step]:
    """x: log_probs (T, rows, C), target (rows, L) padded with −1, input_lengths and target_lengths (rows,)."""
    lp3, targets, il, tl, _ = _layout(x)
    blank = int(params.get("blank", 0))
    lattice = _Lattice(lp3, targets, il, tl, blank)
    nll = lattice.nll()
    needed = lattice.min_frames(targets)
    shown_targets = np.where(np.arange(targets.shape[1])[None, :] < tl[:, None], targets, -1)
    steps = [
        Step("input length", "T_n (frames used)", il),
        Step("target length", "L_n", tl),
        Step("target labels", "l_n  (−1: past L_n)", shown_targets),
        Step("extended labels", f"l' = (blank, l1, blank, …, blank), S' = 2·L_n + 1, blank = {blank}", 2 * tl + 1),
        Step("frames needed", "L_n + number of adjacent repeats", needed),
        Step("feasible", "T_n ≥ frames needed (1 = yes)", (il >= needed).astype(np.int64)),
        Step("log-likelihood", "log p(l|x) = log(α_{T−1}(S'−1) + α_{T−1}(S'−2))  (log-space forward recursion)", -nll),
        Step("negative log-likelihood", "−log p(l|x)  (inf: no alignment)", nll),
    ]
    values = nll
    if params.get("zero_infinity", False):
        values = np.where(nll == np.inf, np.zeros_like(nll), nll)
        steps.append(Step("zero infinity", spell_refs(f"inf → 0 ({ref('zero_infinity')})"), values))
    steps.append(Step("loss", "l_n", values))
    steps.append(Step("length-normalised loss", "l_n / max(L_n, 1)  (what 'mean' averages)", values / np.maximum(tl, 1)))
    return steps


# --------------------------------------------------------------------------- validation


def _integers(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        bad = ~finite | (np.where(finite, a, 0) != np.round(np.where(finite, a, 0)))
        if np.any(bad):
            pos = [int(i) for i in np.argwhere(bad)[0]] if a.ndim else []
            raise InvalidInput(name, f"must be integers; found {float(a[tuple(pos)])!r}" + (f" at index {pos}" if pos else ""))
    elif a.dtype.kind not in "iub":
        raise InvalidInput(name, f"must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def _validate_ctc(x: dict, params: dict) -> None:
    lp = x["log_probs"]
    if lp.ndim not in (2, 3):
        raise InvalidInput("log_probs", f"expected (T, N, C) or unbatched (T, C), got shape {lp.shape}")
    if lp.size == 0:
        raise InvalidInput("log_probs", f"must not be empty, got shape {lp.shape}")
    batched = lp.ndim == 3
    T, C = lp.shape[0], lp.shape[-1]
    n = lp.shape[1] if batched else 1
    blank = int(params.get("blank", 0))
    if not 0 <= blank < C:
        raise InvalidInput("blank", f"{blank} is not a class of the {C} on the last dimension of the log-probabilities")
    lengths = {}
    for name in ("input_lengths", "target_lengths"):
        a = _integers(name, x[name])
        if a.size != n:
            raise InvalidInput(name, f"needs one length per sequence ({n}), got {a.size}")
        a = a.reshape(-1)
        if np.any(a < 0):
            i = int(np.argmax(a < 0))
            raise InvalidInput(name, f"lengths must be 0 or more; found {int(a[i])} at index {i}")
        lengths[name] = a
    il, tl = lengths["input_lengths"], lengths["target_lengths"]
    if np.any(il > T):
        i = int(np.argmax(il > T))
        raise InvalidInput("input_lengths", f"{int(il[i])} at index {i} is more than the {T} frames of the log-probabilities")
    t = _integers("target", x["target"])
    if t.ndim == 2:
        if t.shape[0] != n:
            raise InvalidInput("target", f"padded targets need one row per sequence ({n}), got shape {t.shape}")
        if t.shape[1] < (int(tl.max()) if tl.size else 0):
            raise InvalidInput("target", f"padded targets of width {t.shape[1]} are shorter than target length {int(tl.max())}")
        used = np.arange(t.shape[1])[None, :] < tl[:, None]
    elif t.ndim == 1:
        need = int(tl.sum())
        if t.size != need:
            what = "concatenated targets need Σ target_lengths" if batched else "the target needs target_length"
            raise InvalidInput("target", f"{what} = {need} labels, got {t.size}")
        used = np.ones(t.size, dtype=bool)
    else:
        raise InvalidInput("target", f"expected padded (N, S) or concatenated 1-D targets, got shape {t.shape}")
    bad = used & ((t < 0) | (t >= C))
    if np.any(bad):
        pos = [int(i) for i in np.argwhere(bad)[0]]
        raise InvalidInput("target", f"label {int(t[tuple(pos)])} at index {pos} is out of range for {C} classes")


# --------------------------------------------------------------------------- --logits


def _lastdim_log_softmax_vjp(z: np.ndarray, lp: np.ndarray, g: np.ndarray) -> np.ndarray:
    # torch's log_softmax backward over the last dim: g − softmax·Σ_c g
    return g - np.exp(lp) * np.sum(g, axis=-1, keepdims=True)


LOGITS_TO_LOG_PROBS_LASTDIM = Conversion(
    "logits", "log_probs", "log p = log_softmax(x) over the last (class) dimension",
    lambda z: log_softmax(z, axis=-1), _lastdim_log_softmax_vjp, None,
)


# -------------------------------------------------------------------------- other frameworks


def _framework_layout(x: dict, who: str):
    """(the prediction as a (T, N, C) Var, its kind, padded targets (N, L), input lengths, target lengths)
    for Keras's and optax's CTC, which take batched (B, T, C) logits and padded label rows."""
    kind = "logits" if "logits" in x else "log_probs"
    z = x[kind]
    if z.ndim != 3:
        raise InvalidInput(kind, f"{who} takes a batch: (T, N, C) here (its own layout is (N, T, C)); got shape {z.shape}")
    n = z.shape[1]
    tl = _lengths(x["target_lengths"], n)
    return z, kind, _padded_targets(x["target"], tl), _lengths(x["input_lengths"], n), tl


def _ctc_op(t: T.Tape, z: T.Var, kind: str, targets: np.ndarray, il: np.ndarray, tl: np.ndarray, blank: int,
            who: str) -> T.Var:
    """Per-sequence CTC of log_softmax(z) (both frameworks normalise what they are given): the value by
    the forward recursion, the gradient torch's (softmax − occupancy, exact through the log_softmax)."""
    lp = T.log_softmax_(z, axis=-1)
    t.step("log_softmax", "log-probabilities", f"log_softmax over the classes ({who} takes logits)", lp.value,
           symbol=kind)
    x = {"log_probs": lp.value, "target": targets, "input_lengths": il, "target_lengths": tl}
    nll = ctc_forward(x, {"blank": blank}).values

    def vjp(g):
        return ctc_backward(x, {"blank": blank}, g)["log_probs"]

    out = T.custom(lp, nll, vjp)
    t.step("nll", "per-sequence loss", "−log Σ_alignments Π_t p_t(π_t)", out.value)
    return out


def keras_ctc(t: T.Tape, x: dict, params: dict) -> T.Var:
    """keras.losses.CTC: log_softmax of y_pred, torch's ctc_loss per sequence with blank 0, every
    frame counted (input length T) and label length = the number of nonzero labels of the row."""
    z, kind, targets, il, tl = _framework_layout(x, "keras.losses.CTC")
    return _ctc_op(t, z, kind, targets, il, tl, 0, "keras")


def _keras_ctc_validate(x: dict, params: dict) -> None:
    kind = "logits" if "logits" in x else "log_probs"
    z = x[kind]
    if np.ndim(z) != 3:
        raise InvalidInput(kind, f"keras.losses.CTC takes a batch: (T, N, C) here, got shape {np.shape(z)}")
    t = np.asarray(x["target"])
    if t.ndim != 2:
        raise InvalidInput("target", "keras.losses.CTC takes padded label rows (N, S) with 0 as padding (and blank), "
                                     f"got shape {t.shape}")
    frames, n = z.shape[0], z.shape[1]
    il = _lengths(x["input_lengths"], n)
    tl = _lengths(x["target_lengths"], n)
    nonzero = np.count_nonzero(t != 0, axis=-1)
    if np.any(il != frames):
        i = int(np.argmax(il != frames))
        raise InvalidInput("input_lengths", f"keras.losses.CTC counts every frame (T = {frames}); sequence {i} has "
                                            f"{int(il[i])}")
    if np.any(tl != nonzero):
        i = int(np.argmax(tl != nonzero))
        raise InvalidInput("target_lengths", f"keras.losses.CTC takes the number of nonzero labels of each row as its "
                                             f"length ({int(nonzero[i])} in row {i}), not {int(tl[i])}")


OPTAX_LOG_EPSILON = -1e5


def optax_ctc_values(lp: np.ndarray, targets: np.ndarray, il: np.ndarray, tl: np.ndarray, blank: int) -> np.ndarray:
    """optax.losses.ctc_loss's recursion (blank and label states, log(0) approximated by
    log_epsilon = −1e5): the exact CTC where an alignment exists, a large finite value where none does.
    ``lp``: (T, N, C) log-probabilities; ``targets`` (N, L) right-padded rows as given."""
    eps = OPTAX_LOG_EPSILON
    frames, n, _ = lp.shape
    width = targets.shape[1]
    labels = targets.astype(np.int64)
    repeat = np.zeros((n, width))
    if width > 1:
        repeat[:, :-1] = labels[:, :-1] == labels[:, 1:]
    inside = (labels >= 0) & (labels < lp.shape[2])
    safe = np.where(inside, labels, 0)
    pad = np.arange(frames)[:, None] >= il[None, :]  # (T, N): padded frames
    phi = np.full((n, width + 1), eps)
    phi[:, 0] = 0.0
    emit = np.full((n, width), eps)

    def added(a, score):  # update phi[:, 1:] with score in log space
        return np.concatenate([a[:, :1], np.logaddexp(a[:, 1:], score)], axis=-1)

    for step in range(frames):
        lp_emit = np.where(inside, np.take_along_axis(lp[step], safe, axis=1), 0.0)  # one_hot of −1 is 0
        lp_phi = lp[step][:, blank:blank + 1]
        prev_phi_orig = phi
        prev_phi = added(phi, emit + eps * repeat)
        next_emit = np.logaddexp(prev_phi[:, :-1] + lp_emit, emit + lp_emit)
        next_phi = added(prev_phi + lp_phi, emit + lp_phi + eps * (1.0 - repeat))
        p = pad[step][:, None].astype(lp.dtype)
        emit = p * emit + (1.0 - p) * next_emit
        phi = p * prev_phi_orig + (1.0 - p) * next_phi
    last = added(phi, emit)
    lens = (width - (np.arange(width)[None, :] >= tl[:, None]).sum(axis=1)).astype(np.int64)
    return -last[np.arange(n), lens]


def optax_ctc(t: T.Tape, x: dict, params: dict) -> T.Var:
    """optax.losses.ctc_loss: per sequence, not reduced; the lengths become its padding masks
    (frames ≥ input length and labels ≥ target length are padding); blank = blank_id."""
    z, kind, targets, il, tl = _framework_layout(x, "optax.losses.ctc_loss")
    blank = int(params.get("blank", 0))
    lp = T.log_softmax_(z, axis=-1)
    t.step("log_softmax", "log-probabilities", "log_softmax over the classes (optax takes logits)", lp.value,
           symbol=kind)
    values = optax_ctc_values(lp.value, targets, il, tl, blank)
    exact = ctc_forward({"log_probs": lp.value, "target": targets, "input_lengths": il, "target_lengths": tl},
                        {"blank": blank}).values
    x_native = {"log_probs": lp.value, "target": targets, "input_lengths": il, "target_lengths": tl}
    impossible = ~np.isfinite(exact)

    def vjp(g):
        if np.any(impossible & (np.asarray(g) != 0)):
            # optax differentiates its log_epsilon stand-in for log 0 along the least impossible path
            raise InvalidInput("target", "no alignment of sequence(s) "
                                         f"{', '.join(str(int(i)) for i in np.flatnonzero(impossible))} fits its frames: "
                                         "optax gives a finite stand-in loss (log 0 ≈ −1e5) whose gradient lossctl "
                                         "does not reproduce")
        return ctc_backward(x_native, {"blank": blank}, g)["log_probs"]

    out = T.custom(lp, values, vjp)
    t.step("nll", "per-sequence loss", "−log Σ_alignments Π_t p_t(π_t) (log 0 ≈ −1e5: an impossible alignment "
                                       "costs about 1e5 per missing transition, not inf)", out.value,
           reason="optax approximates log 0 by log_epsilon = −1e5")
    return out


def _optax_ctc_validate(x: dict, params: dict) -> None:
    kind = "logits" if "logits" in x else "log_probs"
    if np.ndim(x[kind]) != 3:
        raise InvalidInput(kind, f"optax.losses.ctc_loss takes a batch: (T, N, C) here, got shape {np.shape(x[kind])}")


CTC_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.ctc_loss",
                              "'mean' divides each sequence's loss by its target length, then averages; "
                              "an impossible alignment is inf"),
    "keras": Convention("keras", "keras.losses.CTC",
                        "logits (log_softmax applied), blank and padding 0, every frame counted; mean over the batch "
                        "without the length division; float32", keras_ctc, kinds=("logits", "log_probs"),
                        validate=_keras_ctc_validate),
    "optax": Convention("optax", "optax.losses.ctc_loss",
                        "logits; lengths as padding masks; per sequence, not reduced; log 0 ≈ −1e5, so an impossible "
                        "alignment is finite", optax_ctc, kinds=("logits", "log_probs"), params=("blank",),
                        validate=_optax_ctc_validate),
}


CTC = LossSpec(
    name="ctc",
    aliases=("ctc-loss",),
    mirrors="torch.nn.functional.ctc_loss",
    summary="Connectionist temporal classification loss of label sequences under per-frame class log-probabilities.",
    formula="l_n = −log Σ_alignments Π_t p_t(π_t), by the log-space forward–backward recursion",
    kinds={"log_probs": None, "logits": LOGITS_TO_LOG_PROBS_LASTDIM},
    aux_inputs=("input_lengths", "target_lengths"),
    params=(
        Param("blank", "int", 0, "Index of the blank class."),
        Param("zero_infinity", "bool", False, "Replace infinite losses (no possible alignment) and their gradients by 0."),
    ),
    target="custom",
    batch_axis=1,
    forward=ctc_forward,
    backward=ctc_backward,
    steps=ctc_steps,
    sample_rows=_ctc_rows,
    validate=_validate_ctc,
    input_help={
        "log_probs": "Log-probabilities (T, N, C) — time, batch, classes — or unbatched (T, C).",
        "logits": "Raw scores (T, N, C) or (T, C), turned into log-probabilities by log_softmax over the last dimension.",
        "target": "Label sequences, classes in [0, C): padded (N, S) or concatenated 1-D (Σ target lengths).",
        "input_lengths": "Frames used per sequence, (N,) integers ≤ T (a number when unbatched).",
        "target_lengths": "Labels per sequence, (N,) integers (a number when unbatched).",
    },
    notes=f"{ref('grad')} for {ref('log_probs')} is torch's exp(lp) − occupancy (the logits gradient, exact only when lp came "
          f"from log_softmax); {ref('logits')} applies log_softmax over the last dimension, where the gradient is exact. "
          "'mean' averages l_n / max(L_n, 1).",
    conventions=CTC_CONVENTIONS,
)

SPECS = (CTC,)
