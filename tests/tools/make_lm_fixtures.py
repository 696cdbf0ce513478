#!/usr/bin/env python
"""Generate tests/fixtures/lm/{lm,linear-ce}.json with PyTorch (float64, autograd) as the oracle.

    python tests/tools/make_lm_fixtures.py           # write both files
    python tests/tools/make_lm_fixtures.py --check   # recompute, compare with the files, write nothing

The cases come from :func:`lm_cases` and :func:`linear_ce_cases` (NumPy only);
``tests/test_lm_torch.py`` runs the same tables live against torch when it is importable.

lm reference: torch ``F.cross_entropy`` on the flattened, shifted, masked batch (labels set to
-100 where the attention mask is 0; with ``shift`` logits[..., :-1, :] and labels[..., 1:]),
in float64; ``normalize sequences`` is the mean over sequences with a counted token of each
sequence's ``F.cross_entropy``; ``global:N`` is ``F.cross_entropy(reduction='sum') / N``.
The gradient is autograd's of that loss with respect to the logits.
bfloat16 cases store the logits as raw bfloat16 bits (``logits_bf16_bits``); torch decodes
them (``torch.tensor(bits, dtype=int16).view(torch.bfloat16)``).

linear-ce reference: ``F.linear_cross_entropy`` (torch 2.13) in float64, gradients for
hidden, lm_head and lm_head_bias.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "lm"


def _bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bits, round to nearest even (what torch's .to(bfloat16) does)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def lm_cases(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    cases: list[dict] = []

    def add(name, logits, labels, **kw):
        case = {"name": name, "logits": np.asarray(logits, dtype=np.float64).tolist(),
                "labels": np.asarray(labels).tolist()}
        case.update({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in kw.items()})
        cases.append(case)

    b, t, v = 2, 6, 9
    logits = rng.standard_normal((b, t, v)) * 2
    labels = rng.integers(0, v, (b, t))
    labels[0, 3] = -100
    add("plain", logits, labels)
    mask = np.ones((b, t), dtype=np.int64)
    mask[1, 4:] = 0
    add("shift-mask", logits, labels, attention_mask=mask, shift=True)
    add("shift-mask-sequences", logits, labels, attention_mask=mask, shift=True, normalize="sequences")
    add("shift-global", logits, labels, shift=True, normalize="global:25")
    add("bytes-total", logits, labels, shift=True, bytes=37)
    add("bytes-per-sequence", logits, labels, attention_mask=mask, bytes=[20, 11])
    add("ignore-index-7", logits, np.where(labels < 0, 7, labels), ignore_index=7)
    add("unbatched", logits[0], labels[0], shift=True)
    add("all-masked", logits, np.full((b, t), -100))
    add("all-masked-by-mask", logits, labels, attention_mask=np.zeros((b, t), dtype=np.int64))
    one_empty = labels.copy()
    one_empty[1] = -100
    add("sequences-one-empty", logits, one_empty, normalize="sequences")
    extreme = rng.standard_normal((b, t, v)) * 3
    extreme[0, 0, 2] = 1e4
    extreme[1, 2, :] = -1e4
    extreme[1, 2, 5] = 50.0
    add("extreme", extreme, labels % v)
    confident = rng.standard_normal((1, 4, 7))
    confident[0, :, 3] = 40.0
    add("confident", confident, [[3, 3, 3, 3]])
    big_v = rng.standard_normal((2, 5, 300)) * 4
    add("vocab-300", big_v, rng.integers(0, 300, (2, 5)), shift=True)
    bits = _bf16_bits((rng.standard_normal((2, 8, 40)) * 5).astype(np.float32))
    case = {"name": "bf16", "logits_bf16_bits": bits.astype(np.int64).tolist(),
            "labels": rng.integers(0, 40, (2, 8)).tolist(), "shift": True,
            "attention_mask": [[1] * 8, [1] * 5 + [0] * 3]}
    cases.append(case)
    # the README's example dump, read from its file (bfloat16 safetensors, padded, shifted)
    cases.append({"name": "example-batch", "source": "examples/lm/batch.safetensors", "shift": True})
    return cases


def linear_ce_cases(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed + 1)
    cases: list[dict] = [{
        "name": "golden-LCE-1",
        "hidden": [[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0]],
        "lm_head": [[0.5, 1.0], [-1.0, 0.2], [0.3, -0.4]],
        "lm_head_bias": [0.1, 0.0, -0.2],
        "target": [0, 2, -100],
        "label_smoothing": 0.1,
    }]
    n, d, v = 7, 5, 23
    h = rng.standard_normal((n, d))
    w = rng.standard_normal((v, d))
    bias = rng.standard_normal(v)
    y = rng.integers(0, v, n)
    y[2] = -100
    cw = rng.random(v) + 0.2
    probs = rng.random((n, v))
    probs /= probs.sum(axis=1, keepdims=True)
    for red in ("mean", "sum", "none"):
        cases.append({"name": f"index-{red}", "hidden": h, "lm_head": w, "lm_head_bias": bias, "target": y,
                      "reduction": red})
        cases.append({"name": f"weight-smoothing-{red}", "hidden": h, "lm_head": w, "target": y, "weight": cw,
                      "label_smoothing": 0.15, "reduction": red})
        cases.append({"name": f"probs-{red}", "hidden": h, "lm_head": w, "lm_head_bias": bias, "target": probs,
                      "weight": cw, "label_smoothing": 0.1, "reduction": red})
    cases.append({"name": "ignore-index-3", "hidden": h, "lm_head": w, "target": np.where(y < 0, 3, y),
                  "ignore_index": 3})
    cases.append({"name": "all-ignored", "hidden": h, "lm_head": w, "lm_head_bias": bias, "target": np.full(n, -100)})
    cases.append({"name": "unbatched", "hidden": h[0], "lm_head": w, "target": int(y[0])})
    for c in cases:
        for k, val in list(c.items()):
            if isinstance(val, np.ndarray):
                c[k] = val.tolist()
    return cases


# -- references (torch) ------------------------------------------------------------------------


def lm_reference(case: dict) -> dict:
    import torch
    import torch.nn.functional as F

    if "source" in case:
        from safetensors.torch import load_file

        tensors = load_file(str(ROOT / case["source"]))
        case = {**case, "labels": tensors["labels"].tolist(), "attention_mask": tensors["attention_mask"].tolist()}
        logits = tensors["logits"].to(torch.float64)
    elif "logits_bf16_bits" in case:
        bits = torch.tensor(case["logits_bf16_bits"], dtype=torch.int64).to(torch.int16)
        logits = bits.view(torch.bfloat16).to(torch.float64)
    else:
        logits = torch.tensor(case["logits"], dtype=torch.float64)
    logits.requires_grad_(True)
    labels = torch.tensor(case["labels"], dtype=torch.int64)
    ignore = int(case.get("ignore_index", -100))
    if "attention_mask" in case:
        labels = torch.where(torch.tensor(case["attention_mask"]) == 0, torch.tensor(ignore), labels)
    lg = logits
    if case.get("shift"):
        lg, labels = lg[..., :-1, :], labels[..., 1:]
    v = lg.shape[-1]
    if lg.dim() == 2:
        lg, labels = lg[None], labels[None]
    norm = case.get("normalize", "tokens")
    per_token = F.cross_entropy(lg.reshape(-1, v), labels.reshape(-1), ignore_index=ignore, reduction="none")
    counts = (labels != ignore).sum(dim=1)
    if norm == "tokens":
        loss = F.cross_entropy(lg.reshape(-1, v), labels.reshape(-1), ignore_index=ignore)
    elif norm == "sequences":
        means = [F.cross_entropy(lg[i], labels[i], ignore_index=ignore) for i in range(lg.shape[0]) if counts[i] > 0]
        loss = torch.stack(means).mean() if means else torch.tensor(float("nan"), dtype=torch.float64) * lg.sum() * 0
    else:
        total = float(norm.split(":", 1)[1])
        loss = F.cross_entropy(lg.reshape(-1, v), labels.reshape(-1), ignore_index=ignore, reduction="sum") / total
    loss.backward()
    per_token = per_token.detach().reshape(labels.shape)
    if logits.dim() == 2:
        per_token = per_token[0]
    return {"loss": _num(loss.item()), "tokens": int(counts.sum()), "per_token": per_token.tolist(),
            "grad": logits.grad.tolist(), "torch": torch.__version__}


def linear_ce_reference(case: dict) -> dict:
    import torch
    import torch.nn.functional as F

    h = torch.tensor(case["hidden"], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(case["lm_head"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(case["lm_head_bias"], dtype=torch.float64, requires_grad=True) if "lm_head_bias" in case else None
    target = torch.from_numpy(np.asarray(case["target"]))  # float64 probabilities stay float64
    if target.dtype.is_floating_point and target.dim() < h.dim():
        target = target.to(torch.int64)
    kwargs = {"reduction": case.get("reduction", "mean"), "label_smoothing": case.get("label_smoothing", 0.0)}
    if "weight" in case:
        kwargs["weight"] = torch.tensor(case["weight"], dtype=torch.float64)
    if "ignore_index" in case:
        kwargs["ignore_index"] = case["ignore_index"]
    out = F.linear_cross_entropy(h, w, target, linear_bias=b, **kwargs)
    out.sum().backward()
    grad = {"hidden": h.grad.tolist(), "lm_head": w.grad.tolist()}
    if b is not None:
        grad["lm_head_bias"] = b.grad.tolist()
    loss = out.tolist() if out.dim() else _num(out.item())
    return {"loss": loss, "grad": grad, "torch": torch.__version__}


def _num(x: float):
    return x if math.isfinite(x) else str(x)


def build() -> dict[str, list[dict]]:
    out = {}
    for name, cases, ref in (("lm", lm_cases(), lm_reference), ("linear-ce", linear_ce_cases(), linear_ce_reference)):
        out[name] = [{**c, "expect": ref(c)} for c in cases]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = ap.parse_args(argv)
    built = build()
    bad = 0
    for name, cases in built.items():
        path = FIXTURE_DIR / f"{name}.json"
        doc = {"generated_by": "tests/tools/make_lm_fixtures.py", "cases": cases}
        if args.check:
            old = json.loads(path.read_text())
            if json.dumps(old["cases"], sort_keys=True) != json.dumps(cases, sort_keys=True):
                print(f"{path} differs from a fresh run", file=sys.stderr)
                bad = 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc, indent=1) + "\n")
            print(f"wrote {path} ({len(cases)} cases)")
    return bad


if __name__ == "__main__":
    sys.exit(main())
