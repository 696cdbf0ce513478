#!/usr/bin/env python3
"""Recompute the expected values of examples/seeds*.yaml with PyTorch (an oracle, not lossctl).

    python examples/check_with_torch.py [examples/seeds.yaml examples/seeds-extra.yaml]

Needs torch (the reference build is 2.13.0, CPU), numpy and PyYAML; it is a maintainer's
tool for these example suites and is not run by lossctl or its tests. Every case is computed
with the torch call it mirrors (``F.cross_entropy``, ``F.nll_loss``, ...; torchvision's
``sigmoid_focal_loss`` re-implemented line by line) in float64 unless the case says
``dtype: float32``, including the not-yet-implemented keys of seeds-extra.yaml
(explain, info, l1/l2/params, activation, ratio). Each ``expect`` entry is compared with
``numpy.isclose`` at rtol 1e-12 / atol 1e-15 (float32 cases: the case's own tolerance) and the
worst relative difference is shown. Exit status 1 if any comparison fails.

File references follow CONTRACT.md §2: ``PATH`` or ``PATH:KEY`` relative to the suite, for
.npy .npz .csv .tsv .txt .json .yaml/.yml; a CSV/TSV whose first row is not numeric has a
header; a table of a single column is read as a 1-D array (a single row stays 2-D).
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

HERE = Path(__file__).resolve().parent
_REF = re.compile(r"^(?P<path>.+?\.(?:npy|npz|csv|tsv|txt|json|ya?ml))(?::(?P<key>.+))?$")
PRED_KEYS = ("logits", "probs", "log_probs", "pred")


# ----------------------------------------------------------------------------- input files

def _table(path: Path, sep: str | None, key: str | None):
    rows = [ln.split(sep) if sep else ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    header = None
    try:
        [float(x) for x in rows[0]]
    except ValueError:
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    arr = np.array([[float(x) for x in r] for r in rows])
    if key is not None:
        col = header.index(key) if header and key in header else int(key)
        return arr[:, col]
    if arr.shape[1] == 1:                       # a single column is 1-D; a single row stays 2-D
        arr = arr.reshape(-1)
    return arr


def load(value, base: Path):
    """A suite value: inline data, or a file reference PATH[:KEY] relative to the suite."""
    if not isinstance(value, str):
        return value
    m = _REF.match(value)
    if not m:
        return yaml.safe_load(value)
    path, key = base / m["path"], m["key"]
    ext = path.suffix
    if ext == ".npy":
        return np.load(path)
    if ext == ".npz":
        with np.load(path) as z:
            if key is None:
                return {k: z[k] for k in z.files}
            return z[key]
    if ext in (".csv", ".tsv", ".txt"):
        return _table(path, {".csv": ",", ".tsv": "\t", ".txt": None}[ext], key)
    doc = json.loads(path.read_text()) if ext == ".json" else yaml.safe_load(path.read_text())
    return doc if key is None else doc[key]


# ----------------------------------------------------------------------------- the oracle

def _t(x, dtype):
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)


def _index_target(tgt, pred):
    t = np.asarray(tgt, dtype=np.float64)
    if t.shape == tuple(pred.shape):           # probability target
        return _t(t, pred.dtype)
    assert np.all(t == np.round(t)), "class-index target must be integer valued"
    return torch.as_tensor(t.astype(np.int64))


def _focal_logits(x, t, alpha, gamma, reduction):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return _reduce(loss, reduction)


def _focal_probs(p, t, alpha, gamma, reduction):   # the blog's FocalLoss (seeds/003)
    bce = F.binary_cross_entropy(p, t, reduction="none")
    p_t = t * p + (1 - t) * (1 - p)
    loss = bce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (t * alpha + (1 - t) * (1 - alpha)) * loss
    return _reduce(loss, reduction)


def _reduce(loss, reduction):
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _sce(x, t, alpha, beta, reduction):            # the blog's SCELoss (seeds/003)
    ce = F.cross_entropy(x, t, reduction="none")
    p = torch.clamp(F.softmax(x, dim=1), min=1e-4, max=1.0)
    onehot = torch.clamp(F.one_hot(t, x.shape[1]).to(x.dtype), min=1e-4, max=1.0)
    rce = -torch.sum(p * torch.log(onehot), dim=1)
    return _reduce(alpha * ce + beta * rce, reduction)


def loss_call(case: dict, base: Path, reduction: str | None = None):
    """(value tensor, prediction tensor requiring grad, prediction key) for one loss case."""
    dtype = torch.float32 if case.get("dtype") == "float32" else torch.float64
    name = case["loss"]
    kind = next(k for k in PRED_KEYS if k in case)
    pred = _t(load(case[kind], base), dtype).requires_grad_(True)
    tgt_raw = load(case["target"], base)
    red = reduction or case.get("reduction", "mean")
    opt = {}
    if "weight" in case:
        opt["weight"] = _t(load(case["weight"], base), dtype)
    if "pos_weight" in case:
        opt["pos_weight"] = _t(load(case["pos_weight"], base), dtype)

    x = pred
    if case.get("activation") == "sigmoid":
        x = torch.sigmoid(pred)
    if name in ("ce", "nll"):
        t = _index_target(tgt_raw, pred)
        if "ignore_index" in case:
            opt["ignore_index"] = int(case["ignore_index"])
        if "label_smoothing" in case:
            opt["label_smoothing"] = float(case["label_smoothing"])
        if name == "ce" and kind == "logits":
            out = F.cross_entropy(x, t, reduction=red, **opt)
        else:
            lp = x if kind == "log_probs" else torch.log(x)
            out = F.nll_loss(lp, t, reduction=red, **opt)
    elif name in ("bce", "bce-logits"):
        t = _t(tgt_raw, dtype)
        if kind == "logits":
            out = F.binary_cross_entropy_with_logits(x, t, reduction=red, **opt)
        else:
            out = F.binary_cross_entropy(x, t, reduction=red, **opt)
    elif name == "kl":
        t = _t(tgt_raw, dtype)
        lp = {"log_probs": x, "probs": torch.log(x), "logits": F.log_softmax(x, dim=1)}[kind]
        out = F.kl_div(lp, t, reduction=red)
    elif name == "focal":
        t = _t(tgt_raw, dtype)
        red = reduction or case.get("reduction", "none")
        alpha, gamma = float(case.get("alpha", 0.25)), float(case.get("gamma", 2.0))
        fn = _focal_logits if kind == "logits" else _focal_probs
        out = fn(x, t, alpha, gamma, red)
    elif name == "sce":
        t = _index_target(tgt_raw, pred)
        out = _sce(x, t, float(case["alpha"]), float(case["beta"]), red)
    elif name == "mse":
        out = F.mse_loss(x, _t(tgt_raw, dtype), reduction=red)
    else:
        raise NotImplementedError(name)

    penalty = 0.0
    if "params" in case:
        params = load(case["params"], base)
        arrays = ([v for k, v in params.items() if "bias" not in k] if isinstance(params, dict)
                  else [params])
        ws = [torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in arrays]
        if "l2" in case:
            penalty += sum(0.5 * float(case["l2"]) * torch.sum(torch.pow(w, 2)) for w in ws)
        if "l1" in case:
            penalty += sum(float(case["l1"]) * torch.sum(torch.abs(w)) for w in ws)
    return out + penalty, pred, kind


def run_loss_case(case: dict, base: Path) -> dict:
    out, pred, kind = loss_call(case, base)
    (out if out.dim() == 0 else out.sum()).backward()
    got = {"loss": out.detach().tolist(), "grad": {kind: pred.grad.tolist()}}
    per, _, _ = loss_call(case, base, reduction="none")
    got["per_sample"] = per.detach().tolist()
    if case.get("explain"):
        x = torch.atleast_2d(_t(load(case[kind], base), torch.float64))   # rows, as lossctl shows them
        got["steps"] = {"exp": torch.exp(x - x.max(dim=1, keepdim=True).values).tolist(),
                        "softmax": torch.softmax(x, dim=1).tolist(),
                        "log-softmax": torch.log_softmax(x, dim=1).tolist()}
    return got


def run_info_case(case: dict, base: Path) -> dict:
    spec = case["info"]
    b = spec.get("base", "e")
    scale = 1.0 if str(b) == "e" else math.log(float(b))
    P = torch.as_tensor(np.asarray(load(spec["p"], base), dtype=np.float64))

    def H(a):
        return float(-torch.special.xlogy(a, a).sum()) / scale + 0.0

    def KL(a, c):   # Σ a·log(a/c) over a > 0; +inf where a > 0 and c = 0
        m = a > 0
        return float(torch.sum(a[m] * (torch.log(a[m]) - torch.log(c[m])))) / scale

    got = {"h_p": H(P)}
    if "q" in spec:
        Q = torch.as_tensor(np.asarray(load(spec["q"], base), dtype=np.float64))
        m = P > 0
        M = (P + Q) / 2
        got.update(h_q=H(Q), h_pq=float(-torch.sum(P[m] * torch.log(Q[m]))) / scale,
                   kl_pq=KL(P, Q), kl_qp=KL(Q, P), js=0.5 * KL(P, M) + 0.5 * KL(Q, M))
    return got


def run_case(case: dict, base: Path) -> dict:
    if "info" in case:
        return run_info_case(case, base)
    if "ratio" in case:
        num = run_loss_case(case["ratio"]["numerator"], base)["loss"]
        den = run_loss_case(case["ratio"]["denominator"], base)["loss"]
        return {"loss": num / den}
    return run_loss_case(case, base)


# ----------------------------------------------------------------------------- comparison

def compare(expect, got, rtol, atol, path=""):
    """Yield (path, ok, worst relative difference) for every leaf of `expect`."""
    if isinstance(expect, dict):
        for k, v in expect.items():
            yield from compare(v, got[k], rtol, atol, f"{path}.{k}" if path else k)
        return
    e = np.asarray(expect, dtype=np.float64)
    g = np.asarray(got, dtype=np.float64)
    if e.shape != g.shape:
        yield path, False, float("inf")
        return
    ok = bool(np.all(np.isclose(g, e, rtol=rtol, atol=atol) | ((g == e) & np.isinf(e))))
    with np.errstate(divide="ignore", invalid="ignore"):
        fin = np.isfinite(e)
        rel = np.abs(g[fin] - e[fin]) / np.maximum(np.abs(e[fin]), 1e-300)
    yield path, ok, float(rel.max()) if rel.size else 0.0


def main(argv: list[str]) -> int:
    suites = [Path(a) for a in argv] or [HERE / "seeds.yaml", HERE / "seeds-extra.yaml"]
    failed = total = 0
    for suite in suites:
        doc = yaml.safe_load(suite.read_text())
        base = suite.resolve().parent
        print(f"== {suite}")
        for case in doc["cases"]:
            total += 1
            expect = case["expect"]
            if not isinstance(expect, dict):
                expect = {"loss": expect}
            f32 = case.get("dtype") == "float32"
            rtol = float(case.get("rtol", 1e-7)) if f32 else 1e-12
            atol = float(case.get("atol", 1e-9)) if f32 else 1e-15
            try:
                got = run_case(case, base)
                results = list(compare(expect, got, rtol, atol))
            except Exception as exc:  # noqa: BLE001 - report and go on
                failed += 1
                print(f"ERROR {case['name']}: {type(exc).__name__}: {exc}")
                continue
            ok = all(r[1] for r in results)
            failed += not ok
            worst = max(r[2] for r in results)
            bad = ", ".join(r[0] for r in results if not r[1])
            print(f"{'ok  ' if ok else 'FAIL'} {case['name']:<34} worst rel diff {worst:.1e}"
                  + (f"  [{bad}: got {got.get(bad.split('.')[0])}]" if bad else ""))
    print(f"{total - failed} of {total} cases agree with torch")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
