"""Language-model token losses: (B, T, V) logits, vocabulary last, streamed in constant memory.

For logits L (B, T, V) and labels Y (B, T) (or (T, V) and (T,), one sequence), position (b, t)
predicts Y[b, t] (with ``shift``: L[b, t] predicts Y[b, t+1], and the last position predicts
nothing). A position *counts* unless its label equals ``ignore_index`` or its attention mask is 0.
For a counted position

    nll[b, t] = logsumexp_v L[b, t, v] − L[b, t, y]        (= −log_softmax(L[b, t])[y])

and, with n_b counted positions in sequence b and n = Σ_b n_b,

    normalize tokens      loss = Σ nll / n                     (F.cross_entropy on the flattened,
                                                                 shifted, masked batch)
    normalize sequences   loss = (1/S) Σ_b (Σ_t nll[b, t] / n_b)  over the S sequences with n_b > 0
    normalize global:N    loss = Σ nll / N                     (N: the tokens of a whole
                                                                 gradient-accumulation step)

    perplexity = exp(loss),  bits_per_token = loss / ln 2,  bits_per_byte = Σ nll / (ln 2 · Σ bytes).

The gradient is ∂loss/∂L[b, t, v] = c_{b,t}·(softmax(L[b, t])_v − δ_{v,y}) for counted positions
(c = 1/n, 1/(S·n_b) or 1/N) and 0 elsewhere: torch autograd's, including its zero gradient for
an all-masked batch whose loss is NaN (0/0).

Inputs by key: ``logits``, ``labels``, optional ``attention_mask`` and ``bytes`` (a total, or
one count per sequence). The logits are read one block of positions at a time (and, for large V,
one block of the vocabulary at a time, with a running log-sum-exp: :mod:`.online_softmax`),
widened from float16/bfloat16/float32 block by block: the (B, T, V) array is never copied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InvalidInput
from ..core.registry import Step
from . import online_softmax

NORMALIZATIONS = ("tokens", "sequences", "global:N")
LN2 = math.log(2.0)


@dataclass(frozen=True)
class Normalize:
    """The denominator rule: ``kind`` is tokens | sequences | global; ``total`` is N for global."""

    kind: str
    total: float | None = None

    @classmethod
    def parse(cls, text: Any) -> "Normalize":
        if isinstance(text, Normalize):
            return text
        value = "tokens" if text is None else str(text).strip()
        if value in ("tokens", "sequences"):
            return cls(value)
        if value.startswith("global:"):
            try:
                total = float(value.split(":", 1)[1])
            except ValueError:
                total = math.nan
            if not (total > 0 and math.isfinite(total)):
                raise InvalidInput("normalize", f"global:N needs a positive token count N, got {value!r}")
            return cls("global", total)
        raise InvalidInput("normalize", f"expected tokens, sequences or global:N, got {value!r}")

    def __str__(self) -> str:
        return f"global:{self.total:g}" if self.kind == "global" else self.kind


@dataclass
class TokenLayout:
    """The positions of a token batch, flattened to rows of the (B·T, V) logits."""

    batch: int  # B (1 for a (T, V) input)
    length: int  # T
    vocab: int  # V
    unbatched: bool
    shift: bool
    rows: Any  # the logits as (B·T, V) rows (a view; never copied)
    target: np.ndarray  # (B·T,) intp: the label each row predicts (0 where it does not count)
    counted: np.ndarray  # (B·T,) bool

    @property
    def positions(self) -> int:
        """Positions that predict a label (T − 1 per sequence with shift)."""
        return self.batch * (self.length - 1 if self.shift else self.length)

    def per_sequence(self, values: np.ndarray) -> np.ndarray:
        """(B·T,) row values in the user's layout: (B, T) or (B, T−1) with shift; (T,) unbatched."""
        out = values.reshape(self.batch, self.length)
        if self.shift:
            out = out[:, :-1]
        return out[0] if self.unbatched else out


@dataclass
class LMResult:
    """Everything ``lm`` computes for one batch (see the module docstring for the formulas)."""

    tokens: int
    loss: float
    perplexity: float
    bits_per_token: float
    bits_per_byte: float | None
    denominator: float
    normalize: str
    nll_sum: float
    positions: int
    per_token: np.ndarray  # NLL per position (0 where not counted), the user's layout
    per_sequence: dict[str, np.ndarray] | None = None
    mean_sequence_perplexity: float | None = None
    grad: np.ndarray | None = None
    steps: list[Step] | None = None
    note: str = ""
    dtype: str = "float64"
    extras: dict[str, Any] = field(default_factory=dict)


# -- preparing the positions ---------------------------------------------------------------------


def _integer_valued(name: str, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iub":
        return a.astype(np.int64, copy=False)
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(a) | (a != np.round(a))
        if np.any(bad):
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidInput(name, f"expected integer token ids, got {a[pos]!r} at {list(pos)}")
        return a.astype(np.int64)
    raise InvalidInput(name, f"expected integer token ids, got dtype {a.dtype}")


def layout(x: Mapping[str, Any], params: Mapping[str, Any]) -> TokenLayout:
    """Check the shapes and values of a token batch and flatten it to rows.

    Raises :class:`InvalidInput` naming the input (``logits``, ``labels``, ``attention_mask``).
    """
    logits = x["logits"]
    shape = tuple(np.shape(logits))
    if len(shape) not in (2, 3):
        raise InvalidInput("logits", f"expected (B, T, V) or (T, V) logits, vocabulary last; got shape {shape}")
    unbatched = len(shape) == 2
    b, t, v = (1, *shape) if unbatched else shape
    if v == 0:
        raise InvalidInput("logits", "the vocabulary dimension (last) is empty")
    labels = np.asarray(x["labels"])
    want = shape[:-1]
    if labels.shape != want:
        raise InvalidInput("labels", f"expected shape {want} (the logits' shape without the vocabulary), got {labels.shape}")
    labels = _integer_valued("labels", labels).reshape(b, t)
    ignore = int(params.get("ignore_index", -100))
    counted = labels != ignore
    mask = x.get("attention_mask")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != want:
            raise InvalidInput("attention_mask", f"expected shape {want} (as the labels), got {mask.shape}")
        if mask.dtype.kind not in "biuf":
            raise InvalidInput("attention_mask", f"expected 0/1 values, got dtype {mask.dtype}")
        mask = mask.reshape(b, t)
        with np.errstate(invalid="ignore"):
            bad = (mask != 0) & (mask != 1)
        if np.any(bad):
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidInput("attention_mask", f"expected 0/1 values, got {mask[pos]!r} at {list(pos)}")
        counted &= mask != 0
    shift = bool(params.get("shift", False))
    if shift:
        if t < 2:
            raise InvalidInput("logits", f"shift needs at least 2 positions per sequence, got T = {t}")
        # position t predicts label t + 1; the last position predicts nothing
        labels = np.concatenate([labels[:, 1:], np.full((b, 1), ignore, dtype=np.int64)], axis=1)
        counted = np.concatenate([counted[:, 1:], np.zeros((b, 1), dtype=bool)], axis=1)
    out_of_range = counted & ((labels < 0) | (labels >= v))
    if np.any(out_of_range):
        bi, ti = (int(i) for i in np.argwhere(out_of_range)[0])
        ti_user = ti + 1 if shift else ti
        where = f"position {ti_user}" if unbatched else f"sequence {bi}, position {ti_user}"
        raise InvalidInput("labels", f"token id {int(labels[bi, ti])} is out of range for a vocabulary of {v} "
                                     f"({where}; ignore_index is {ignore})")
    target = np.where(counted, labels, 0).astype(np.intp).reshape(-1)
    rows = logits.reshape(b * t, v) if hasattr(logits, "reshape") else np.reshape(logits, (b * t, v))
    return TokenLayout(b, t, v, unbatched, shift, rows, target, counted.reshape(-1))


def _bytes_total(x: Mapping[str, Any], lay: TokenLayout) -> tuple[float | None, np.ndarray | None]:
    given = x.get("bytes")
    if given is None:
        return None, None
    a = np.asarray(given, dtype=np.float64)
    if a.ndim == 0 or a.size == 1 and lay.unbatched:
        per_seq = None
    elif a.shape == (lay.batch,):
        per_seq = a
    else:
        raise InvalidInput("bytes", f"expected a total or one count per sequence ({lay.batch},), got shape {a.shape}")
    if np.any(~np.isfinite(a)) or np.any(a < 0):
        raise InvalidInput("bytes", "byte counts must be finite and non-negative")
    return float(math.fsum(a.reshape(-1))), per_seq


# -- the streamed pass -------------------------------------------------------------------------


def _block_rows(vocab_cols: int, itemsize: int, block_bytes: int) -> int:
    return max(1, block_bytes // max(1, vocab_cols * itemsize))


def _picked(rows_block, index: np.ndarray, dtype) -> np.ndarray:
    """L[r, y_r] for each row of a block, widened."""
    return online_softmax.narrow_view(rows_block[np.arange(len(index)), index]).astype(dtype)


def token_nll(lay: TokenLayout, *, dtype=np.float64, per_sample: bool = True, grad_scale: np.ndarray | None = None,
              grad_out: Any = None, block_bytes: int = 4 << 20, vocab_block: int | None = None,
              threads: int = 1, on_block: Callable[[int, int], None] | None = None,
              nonfinite: list | None = None) -> np.ndarray:
    """NLL of every row of ``lay`` (0 where it does not count), one block of rows at a time.

    ``grad_scale`` (B·T,): with it, ``grad_out[r0:r1] = scale·(softmax − onehot)`` is written for
    each block (rows that do not count get 0). ``vocab_block``: columns per block (default:
    the whole vocabulary up to 131,072, else blocks of 32,768). ``on_block(r0, r1)`` runs after
    each block is done (e.g. to drop its pages from memory). Threads run blocks concurrently
    (NumPy releases the GIL); results are consumed in order. ``nonfinite``: a list that receives
    ``(n_nan, n_inf, (row, column), value)`` for each block whose counted rows meet a NaN or
    infinite logit (found from the block's log-sum-exp and NLL, so no extra pass over finite
    blocks; a −inf logit that changes neither goes unreported).
    """
    dtype = np.dtype(dtype)
    n, v = lay.rows.shape
    vb = vocab_block or (v if v <= 131072 else 32768)
    vb = max(1, min(vb, v))
    rows_per_block = _block_rows(vb, dtype.itemsize, block_bytes)
    if vb < v:  # keep all of a row's vocabulary blocks in one job
        rows_per_block = max(1, rows_per_block)
    nll = np.zeros(n, dtype=dtype)
    blocks = [(r0, min(r0 + rows_per_block, n)) for r0 in range(0, n, rows_per_block)]

    def job(r0: int, r1: int) -> np.ndarray:
        counted = lay.counted[r0:r1]
        if not counted.any():
            if grad_out is not None:
                grad_out[r0:r1] = 0
            return np.zeros(r1 - r0, dtype=dtype)
        block = lay.rows[r0:r1]
        target = lay.target[r0:r1]
        m = s = None
        for c0 in range(0, v, vb):
            bm, bs = online_softmax.ROW_KERNEL(block[:, c0:c0 + vb], dtype, per_sample)
            m, s = (bm, bs) if m is None else online_softmax.combine(m, s, bm, bs)
        lse = online_softmax.logsumexp_from(m, s)
        with np.errstate(invalid="ignore"):
            values = np.where(counted, lse - _picked(block, target, dtype), 0.0).astype(dtype, copy=False)
        if nonfinite is not None and not (np.isfinite(lse[counted]).all() and np.isfinite(values).all()):
            nonfinite.append(_scan_nonfinite(block, r0, v, vb))
        if grad_out is not None:
            scale = np.where(counted, grad_scale[r0:r1], 0.0).astype(dtype)[:, None]
            local = np.arange(r1 - r0)
            for c0 in range(0, v, vb):
                c1 = min(c0 + vb, v)
                z = online_softmax.widen(block[:, c0:c1], dtype)
                with np.errstate(invalid="ignore", over="ignore"):
                    g = np.subtract(z, lse[:, None], out=online_softmax.scratch(30, z.shape, dtype))
                    np.exp(g, out=g)
                    # rows that do not count receive nothing (not 0·NaN): torch's nll backward skips them
                    g *= scale
                    g[~counted] = 0.0
                    inside = counted & (target >= c0) & (target < c1)
                    g[local[inside], target[inside] - c0] -= scale[inside, 0]
                grad_out[r0:r1, c0:c1] = g
        return values

    def finish(r0: int, r1: int, values: np.ndarray) -> None:
        nll[r0:r1] = values
        if on_block is not None:
            on_block(r0, r1)

    if threads <= 1 or len(blocks) <= 1:
        for r0, r1 in blocks:
            finish(r0, r1, job(r0, r1))
        return nll
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    window: deque = deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lossctl-lm") as pool:
        try:
            for r0, r1 in blocks:
                window.append((r0, r1, pool.submit(job, r0, r1)))
                while len(window) > threads:
                    a, b, fut = window.popleft()
                    finish(a, b, fut.result())
            while window:
                a, b, fut = window.popleft()
                finish(a, b, fut.result())
        except BaseException:
            for *_, fut in window:
                fut.cancel()
            raise
    return nll


def _scan_nonfinite(block, r0: int, v: int, vb: int) -> tuple[int, int, tuple[int, int] | None, float]:
    """NaN and ±inf counts of a block of rows, and the first such entry (row-major)."""
    n_nan = n_inf = 0
    first: tuple[int, int] | None = None
    value = 0.0
    for c0 in range(0, v, vb):
        z = online_softmax.narrow_view(block[:, c0:c0 + vb])  # exact for NaN and inf
        nan, inf = np.isnan(z), np.isinf(z)
        n_nan += int(np.count_nonzero(nan))
        n_inf += int(np.count_nonzero(inf))
        bad = np.argwhere(nan | inf)
        if bad.size:
            at = (r0 + int(bad[0][0]), c0 + int(bad[0][1]))
            if first is None or at < first:
                first, value = at, float(z[int(bad[0][0]), int(bad[0][1])])
    return n_nan, n_inf, first, value


# -- the call ----------------------------------------------------------------------------------


def _row_scale(norm: Normalize, counts: np.ndarray, lay: TokenLayout) -> tuple[np.ndarray, float]:
    """(∂loss/∂Σ-of-row-NLL for each row, the denominator reported)."""
    n = float(counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        if norm.kind == "tokens":
            return np.full(lay.batch * lay.length, 1.0 / n if n else np.inf), n
        if norm.kind == "global":
            return np.full(lay.batch * lay.length, 1.0 / norm.total), float(norm.total)
        s = float(np.count_nonzero(counts))
        per_seq = np.where(counts > 0, 1.0 / (s * counts), 0.0)
        return np.repeat(per_seq, lay.length), s


def evaluate(x: Mapping[str, Any], params: Mapping[str, Any], *, dtype=np.float64, grad: bool = False,
             per_sample: bool = False, explain: bool = False, grad_out: Any = None, block_bytes: int = 4 << 20,
             vocab_block: int | None = None, threads: int = 1,
             on_block: Callable[[int, int], None] | None = None,
             rows_nll: Callable[..., np.ndarray] | None = None) -> LMResult:
    """The ``lm`` call: loss, perplexity, bits per token/byte, per-sequence table, gradient, steps.

    ``x``: ``logits`` (B, T, V) or (T, V), ``labels`` (B, T) or (T,), optional ``attention_mask``
    (as the labels) and ``bytes`` (a total, or (B,)). ``params``: ``shift`` (False),
    ``ignore_index`` (-100), ``normalize`` (tokens | sequences | global:N).
    ``grad_out``: where the (B·T, V) gradient goes (an array or memory map; default: a new array).
    NaN/inf logits met in counted positions are reported in ``extras["nonfinite"]``:
    ``(n_nan, n_inf, first index, its value)``.
    ``rows_nll(lay, dtype=, per_sample=, nonfinite=, grad_scale=, grad_out=) -> (nll, grad)``:
    computes :func:`token_nll` of the rows elsewhere (a Dask cluster), giving the same values;
    with ``grad_scale`` also the gradient rows, into ``grad_out`` when given, else returned
    (None when they were written elsewhere, e.g. as shards next to an output file).

    >>> r = evaluate({"logits": [[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], "labels": [[0, 1]]}, {})
    >>> round(r.loss, 6), r.tokens
    (0.395495, 2)
    """
    dtype = np.dtype(dtype)
    norm = Normalize.parse(params.get("normalize"))
    logits = x["logits"]
    if not hasattr(logits, "shape"):
        logits = np.asarray(logits, dtype=np.float64)
    kind = getattr(logits, "dtype", np.dtype(np.float64)).kind
    if kind in "iu" and isinstance(logits, np.ndarray):  # integer scores (a literal like [[1, 2]]): exact in float64
        logits = logits.astype(np.float64)
    elif kind not in "fV" and not online_softmax.is_bfloat16(logits.dtype):
        raise InvalidInput("logits", f"expected floating-point logits, got dtype {logits.dtype}")
    lay = layout({**x, "logits": logits}, params)
    bytes_total, bytes_per_seq = _bytes_total(x, lay)
    counts = lay.counted.reshape(lay.batch, lay.length).sum(axis=1)
    scale, denom = _row_scale(norm, counts, lay)
    grad_rows = None
    if grad and (grad_out is not None or rows_nll is None):
        grad_rows = grad_out if grad_out is not None else np.empty((lay.batch * lay.length, lay.vocab), dtype=dtype)
    found: list = []
    if rows_nll is not None:
        nll, grad_rows = rows_nll(lay, dtype=dtype, per_sample=per_sample or explain, nonfinite=found,
                                  grad_scale=scale if grad else None, grad_out=grad_rows)
    else:
        nll = token_nll(lay, dtype=dtype, per_sample=per_sample or explain, grad_scale=scale if grad else None,
                        grad_out=grad_rows, block_bytes=block_bytes, vocab_block=vocab_block, threads=threads,
                        on_block=on_block, nonfinite=found)
    tokens = int(counts.sum())
    nll_seq = np.array([math.fsum(r) for r in nll.reshape(lay.batch, lay.length)], dtype=np.float64)
    total = math.fsum(nll.tolist())  # correctly rounded: the same for any blocks or sequences
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        seq_mean = nll_seq / counts
        if norm.kind == "sequences":
            loss = float(np.float64(math.fsum(seq_mean[counts > 0])) / np.float64(denom))
        else:
            loss = float(np.float64(total) / np.float64(denom))
        ftype = dtype.type
        loss = float(ftype(loss))
        perplexity = float(np.exp(np.float64(loss)))
        bpt = loss / LN2
        bpb = None if bytes_total is None else float(np.float64(total) / (np.float64(LN2) * np.float64(bytes_total)))
    note = ""
    if tokens == 0:
        note = (f"every position is masked ({_why_masked(lay, x, params)}): the mean over 0 tokens is 0/0 = nan, "
                "as torch gives it (its gradient is 0)")
    result = LMResult(tokens=tokens, loss=loss, perplexity=perplexity, bits_per_token=bpt, bits_per_byte=bpb,
                      denominator=denom, normalize=str(norm), nll_sum=float(total), positions=lay.positions,
                      per_token=lay.per_sequence(nll), note=note, dtype=dtype.name)
    if found:
        (row, col), value = min((f[2], f[3]) for f in found)
        b, t = divmod(row, lay.length)
        result.extras["nonfinite"] = (sum(f[0] for f in found), sum(f[1] for f in found),
                                      (t, col) if lay.unbatched else (b, t, col), value)
    if per_sample or explain:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            table = {"tokens": counts.astype(np.int64), "nll_sum": nll_seq, "mean_nll": seq_mean,
                     "perplexity": np.exp(seq_mean)}
            if bytes_per_seq is not None:
                table["bits_per_byte"] = nll_seq / (LN2 * bytes_per_seq)
        result.per_sequence = table
        alive = counts > 0
        result.mean_sequence_perplexity = float(np.mean(table["perplexity"][alive])) if alive.any() else math.nan
    if grad_rows is not None:
        shape = (lay.length, lay.vocab) if lay.unbatched else (lay.batch, lay.length, lay.vocab)
        result.grad = grad_rows.reshape(shape) if hasattr(grad_rows, "reshape") else grad_rows
    if explain:
        result.steps = derivation(lay, nll, result, norm, dtype)
    return result


def _why_masked(lay: TokenLayout, x: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    parts = [f"every label is ignore_index {int(params.get('ignore_index', -100))}"]
    if x.get("attention_mask") is not None:
        parts = ["labels equal to ignore_index or attention mask 0 everywhere"]
    if lay.shift and lay.length < 2:
        parts.append("shift leaves no position")
    return "; ".join(parts)


def derivation(lay: TokenLayout, nll: np.ndarray, result: LMResult, norm: Normalize, dtype) -> list[Step]:
    """The derivation: one counted token's NLL from its logits, then masking, the count, the mean, exp."""
    steps: list[Step] = []
    first = np.flatnonzero(lay.counted)
    if first.size:
        r = int(first[0])
        b, t = divmod(r, lay.length)
        z = online_softmax.widen(lay.rows[r:r + 1], np.dtype(dtype), slot=31)[0].copy()
        y = int(lay.target[r])
        m = float(z.max())
        lse = float(online_softmax.logsumexp_from(*online_softmax.block_stats(z[None, :], dtype, True))[0])
        where = f"position {t}" if lay.unbatched else f"sequence {b}, position {t}"
        label_at = f"labels[{t + 1}]" if lay.unbatched else f"labels[{b}, {t + 1}]"
        if not lay.shift:
            label_at = label_at.replace(f"{t + 1}]", f"{t}]")
        top = np.argsort(-z, kind="stable")[:3]
        shown = ", ".join(f"z[{int(i)}] = {float(z[i]):.6g}" for i in top)
        steps += [
            Step("token", f"{where} predicts y = {label_at} = {y}" + (" (shifted: position t predicts label t+1)" if lay.shift else ""),
                 y, per_sample=False),
            Step("logits", f"z = logits[{where}], V = {lay.vocab} (largest: {shown})", None, per_sample=False),
            Step("max", "m = max_v z_v", m, per_sample=False),
            Step("log-sum-exp", "lse = m + log Σ_v exp(z_v − m)", lse, per_sample=False),
            Step("target logit", "z_y", float(z[y]), per_sample=False),
            Step("NLL", "lse − z_y = −log softmax(z)_y", float(nll[r]), per_sample=False),
        ]
    else:
        steps.append(Step("token", "no position counts", None, per_sample=False))
    steps += [
        Step("masking", f"a position counts unless label = ignore_index or attention mask = 0: "
                        f"{result.tokens} of {result.positions} positions", result.tokens, per_sample=False),
        Step("sum", "Σ NLL over counted positions", result.nll_sum, per_sample=False),
    ]
    if norm.kind == "tokens":
        steps.append(Step("count", "n = counted tokens (normalize: tokens)", result.denominator, per_sample=False))
        steps.append(Step("mean", "loss = Σ NLL / n", result.loss, per_sample=False))
    elif norm.kind == "sequences":
        steps.append(Step("count", "S = sequences with at least one counted token (normalize: sequences)",
                          result.denominator, per_sample=False))
        steps.append(Step("mean", "loss = (1/S) Σ_b (Σ_t NLL[b, t] / n_b)", result.loss, per_sample=False))
    else:
        steps.append(Step("count", f"N = {norm.total:g} (normalize: {norm}, the whole accumulation step's tokens)",
                          result.denominator, per_sample=False))
        steps.append(Step("mean", "loss = Σ NLL / N", result.loss, per_sample=False))
    steps.append(Step("exp", "perplexity = exp(loss)", result.perplexity, per_sample=False))
    return steps
