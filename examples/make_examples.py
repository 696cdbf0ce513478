#!/usr/bin/env python3
"""(Re)create every data file under examples/ from the values in the seed blogs.

    python examples/make_examples.py            # write the files
    python examples/make_examples.py --check    # exit 1 if a file is missing or differs

Only NumPy is needed. The output is byte-for-byte deterministic: text files are
written with fixed formatting (floats as Python ``repr``, so they round-trip),
``.npy`` with ``numpy.lib.format``, and ``.npz`` as a stored zip whose entries
carry a fixed timestamp (``numpy.savez`` stamps the current time).

The suites ``seeds.yaml`` and ``seeds-extra.yaml`` and ``README.md`` are written
by hand (they carry the per-case comments) and are not touched here.
Every array below says where it comes from: ``seeds/NNN_...txt`` is a file in
``shared/seeds``; "constructed" marks inputs made up here because the blog
shows only code or a formula for that example.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

F64 = np.float64
I64 = np.int64


# --------------------------------------------------------------------------- #
# serialisers: each returns bytes, so that --check can compare without writing
# --------------------------------------------------------------------------- #

def _num(v) -> str:
    """One number as text: ints as ints, floats as the shortest round-trip repr."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("booleans are not data")
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return repr(float(v))


def _flow(v) -> str:
    """JSON text (also valid YAML flow syntax) for nested lists / numbers / dicts."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _num(v)


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy(a))
    return buf.getvalue()


def table(a, sep: str, header: list[str] | None = None) -> bytes:
    """CSV/TSV/TXT: a 1-D array is one value a line (one column); 2-D is rows."""
    a = np.asarray(a)
    rows = a.reshape(-1, 1) if a.ndim == 1 else a
    lines = [sep.join(header)] if header else []
    lines += [sep.join(_num(x) for x in row) for row in rows.tolist()]
    return ("\n".join(lines) + "\n").encode()


def columns(cols: dict[str, list], sep: str = ",") -> bytes:
    """A table with a header row, one named column per entry."""
    names = list(cols)
    n = len(cols[names[0]])
    assert all(len(c) == n for c in cols.values())
    lines = [sep.join(names)] + [sep.join(_num(cols[k][i]) for k in names) for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def json_doc(v) -> bytes:
    return (_flow(v) + "\n").encode()


def yaml_doc(mapping: dict, comment: str) -> bytes:
    lines = [f"# {c}" if c else "#" for c in comment.strip().splitlines()]
    lines += [f"{k}: {_flow(v)}" for k, v in mapping.items()]
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------- #
# the data
# --------------------------------------------------------------------------- #

def log_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    s = x - m
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def build() -> dict[str, bytes]:
    out: dict[str, bytes] = {}

    # ---- softmax/ : seeds/001 (softmax of [3,1,-3]) and seeds/004 (2x3 batch)
    out["softmax/three_class.json"] = json_doc({"logits": [3.0, 1.0, -3.0], "target": 0})
    out["softmax/batch.txt"] = table(np.array([[3, 1, -3], [2, 8, 1]], F64), " ")

    # ---- ce/ : seeds/003 §一 (CE == LogSoftmax+NLL == KL batchmean)
    seed_logits = np.array([[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]], F64)
    seed_target = np.array([0, 2], I64)
    out["ce/seed_logits.npy"] = npy(seed_logits)
    out["ce/seed_target.csv"] = table(seed_target, ",")            # no header, one column
    out["ce/seed_log_probs.npz"] = npz({"log_probs": log_softmax(seed_logits)})
    # seeds/001 weight section: (N, C, d1) = (2, 2, 2) input, (N, d1) target, weight [1, 9]
    out["ce/seg.yaml"] = yaml_doc(
        {"logits": [[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]],
         "target": [[0, 0], [1, 1]]},
        "seeds/001: F.cross_entropy(input, target[, weight]) with input of shape (2, 2, 2);\n"
        "the class dimension is dim 1, target has shape (N, d1) = (2, 2).")
    out["ce/class_weight.txt"] = table(np.array([1.0, 9.0], F64), " ")   # one value a line
    # seeds/001 multi-class "scissors" example, probabilities after softmax
    out["ce/scissors.yaml"] = yaml_doc(
        {"good": [[0.9, 0.1, 0.0]], "bad": [[0.1, 0.9, 0.0]], "target": [0]},
        "seeds/001 (多分类): the sample 'scissors' has true distribution [1, 0, 0];\n"
        "'good' and 'bad' are the two predicted distributions of the blog.")
    # seeds/000 softmax vs hardmax table, (5, 1, 1, 1); hardmax = x / sum(x)
    out["ce/softmax_vs_hardmax.json"] = json_doc(
        {"logits": [[5.0, 1.0, 1.0, 1.0]], "hardmax": [[0.625, 0.125, 0.125, 0.125]], "target": [0]})
    # seeds/001 UNet criterion, ignore_index=255 (constructed 1x2x2x2 segmentation output)
    out["ce/unet_ignore.npz"] = npz({
        "logits": np.array([[[[1.2, -0.3], [0.4, 2.0]], [[-0.5, 0.8], [3.0, 0.1]]]], F64),
        "target": np.array([[[0, 1], [255, 0]]], I64),
    })

    # ---- bce/ : seeds/001 BCE example (S1/S2)
    s1_input = np.array([[0.6, 0.1], [0.3, 0.8]], F64)
    s1_target = np.array([[0, 1], [1, 0]], I64)
    out["bce/s1_input.csv"] = table(s1_input, ",")                  # no header
    out["bce/s1_target.tsv"] = table(s1_target, "\t")
    out["bce/s1_sigmoid.npy"] = npy(sigmoid(s1_input))             # torch.sigmoid(input)
    # seeds/003 BCELoss(sigmoid) vs BCEWithLogitsLoss (S3)
    s3_pred = [5.0, 3.0, 10.0, -5.0, -3.0, -10.0]
    s3_true = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    out["bce/s3.json"] = json_doc({"y_pred": s3_pred, "y_true": s3_true})
    out["bce/s3_sigmoid.npy"] = npy(sigmoid(np.array(s3_pred, F64)))
    # seeds/001 BCE weight example: printed (4-decimal) input, weight w[label] with w = [0.1, 0.9]
    w_target = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], F64)
    w_label = np.array([0.1, 0.9], F64)
    out["bce/weighted.npz"] = npz({
        "input": np.array([[0.1531, 0.3302, 0.7537],
                           [0.2200, 0.6875, 0.2268],
                           [0.5109, 0.5873, 0.9275]], F64),
        "target": w_target,
        "weight": w_label[w_target.astype(I64)],                    # the blog's double loop
        "w_by_label": w_label,
    })
    # seeds/001 multi-label dog/cat/pig example (S9): one row per class
    out["bce/multilabel.csv"] = columns({
        "p_good": [0.95, 0.73, 0.05],
        "p_bad": [0.3, 0.5, 0.7],
        "target": [1, 1, 0],
    })

    # ---- nll/ : seeds/001 NLLLoss examples (S5); inputs are NOT log-probabilities
    out["nll/input_1d.txt"] = table(np.array([[2, 3, 1], [3, 7, 9]], F64), " ")
    out["nll/input_2d.npy"] = npy(np.array([[[2, 3], [1, 5]], [[3, 7], [1, 9]]], F64))
    out["nll/target_2d.json"] = json_doc([[1, 1], [0, 0]])

    # ---- kl/ : seeds/003 KLDivLoss(batchmean)(log_softmax(x), one_hot(t))
    onehot = np.eye(3, dtype=F64)[seed_target]
    out["kl/seed_onehot.csv"] = table(onehot, ",", header=["c0", "c1", "c2"])
    out["kl/seed_onehot.json"] = json_doc(onehot)

    # ---- focal/ : seeds/003 FocalLoss (S7), probability space
    easy = np.array([[0.9], [0.1]], F64)
    out["focal/easy_hard.yaml"] = yaml_doc(
        {"easy_pred": easy, "hard_pred": [[0.5], [0.5]], "y_true": [[1.0], [0.0]]},
        "seeds/003 FocalLoss(gamma=2, alpha=0.75): easy and hard samples.\n"
        "Predictions are probabilities (the blog feeds sigmoid outputs).")
    out["focal/easy_logits.npy"] = npy(np.log(easy / (1.0 - easy)))  # logit(p)

    # ---- sce/ : seeds/003 SCE pieces (S8): p and y clamped to [1e-4, 1 - 1e-4]
    lo, hi = 1e-4, 1.0 - 1e-4
    out["sce/pieces.yaml"] = yaml_doc(
        {"p": [float(np.clip(0.8, lo, hi))],
         "y_clean": [float(np.clip(1.0, lo, hi))],
         "y_noisy": [float(np.clip(0.0, lo, hi))]},
        "seeds/003 ce(y, p) / rce(y, p) with p = 0.8 and y = 1 (clean) or y = 0 (noisy),\n"
        "both already clamped to [1e-4, 1 - 1e-4] as in the blog's ce():\n"
        "ce(y, p) = bce(probs=p, target=y), rce(y, p) = bce(probs=y, target=p).")
    # seeds/003 SCELoss class (a=1, b=1): constructed logits, every softmax prob >= 1e-4
    # so the result does not depend on how the prediction is clamped.
    out["sce/logits.tsv"] = table(np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], F64), "\t")

    # ---- grad/ : seeds/000 and seeds/002, sigmoid + CE vs sigmoid + MSE (constructed z)
    out["grad/sigmoid_z.csv"] = columns({
        "z": [-4.0, -2.0, 0.0, 2.0, 4.0],
        "y": [1.0, 1.0, 1.0, 1.0, 1.0],
    })

    # ---- regularisation/ : seeds/003 L2Loss/L1Loss on Net(2->4->8->1), 61 parameters
    rng = np.random.RandomState(20210926)          # legacy generator: stable across NumPy versions
    shapes = [("fc1.weight", (4, 2)), ("fc1.bias", (4,)),
              ("fc2.weight", (8, 4)), ("fc2.bias", (8,)),
              ("fc3.weight", (1, 8)), ("fc3.bias", (1,))]
    params = {k: np.round(rng.uniform(-1.0, 1.0, size=s), 2).astype(F64) for k, s in shapes}
    assert sum(p.size for p in params.values()) == 61
    out["regularisation/params.npz"] = npz(params)
    out["regularisation/fc1_weight.npy"] = npy(params["fc1.weight"])
    out["regularisation/batch.yaml"] = yaml_doc(
        {"logits": [[1.2], [-0.4], [2.5], [-1.7]], "target": [[1.0], [0.0], [0.0], [1.0]]},
        "Constructed output of the blog's Net for a batch of 4 points (seeds/003 §四),\n"
        "for focal_loss_with_regularization = focal + L2(0.001) + L1(0.001).")

    # ---- info/ : seeds/000 (Bernoulli entropy, max 0.69 at p = 0.5), seeds/002/003 (H, KL, CE)
    out["info/coin.yaml"] = yaml_doc(
        {"p": [0.5, 0.5], "sunrise": [0.999, 0.001]},
        "seeds/000: entropy of a Bernoulli distribution, largest (0.69 nats) for a fair coin;\n"
        "'sunrise' (the sun rising in the east, very likely) is constructed: small entropy.")
    out["info/scissors.csv"] = columns({"p": [1.0, 0.0, 0.0], "q": [0.9, 0.1, 0.0]})
    out["info/smoothed.tsv"] = columns({"p": [0.9, 0.05, 0.05], "q": [0.7, 0.2, 0.1]}, sep="\t")

    # ---- lm/ : linear-ce's inputs as one file (those of lm/lm.yaml's linear-ce-golden case)
    out["lm/linear_ce.npz"] = npz({
        "hidden": np.array([[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0]], F64),
        "lm_head": np.array([[0.5, 1.0], [-1.0, 0.2], [0.3, -0.4]], F64),
        "lm_head_bias": np.array([0.1, 0.0, -0.2], F64),
        "target": np.array([0, 2, -100], I64),
    })
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the files on disk instead of writing; exit 1 on a difference")
    args = ap.parse_args(argv)
    files = build()
    bad = 0
    for rel, data in sorted(files.items()):
        path = HERE / rel
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                print(f"differs: examples/{rel}", file=sys.stderr)
                bad += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)
                print(f"wrote examples/{rel}")
    if args.check:
        print(f"{len(files) - bad} of {len(files)} example files up to date")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
