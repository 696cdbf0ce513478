"""Write examples/lm/batch.safetensors: a small language-model dump as a training loop saves it.

Two sequences of 16 positions, a vocabulary of 1,000, bfloat16 logits (vocabulary last), int64
labels in the Hugging Face convention (-100 at padding), an attention mask, and the UTF-8 byte
count of each sequence's text (for bits per byte). The second sequence is shorter and padded.
The logits come from a deterministic stand-in for a model: Gaussian noise plus a bump at the
next token, so that with ``--shift`` (position t predicts label t+1) the loss is that of a
half-trained model. Needs numpy, ml_dtypes and safetensors:

    python examples/lm/make_batch.py
"""

from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
V, T = 1000, 16
TEXTS = ("the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat",
         "numbers in a loss are only as good as their denominator")


def token_ids(text: str) -> list[int]:
    """A stand-in tokenizer: one id per word, 1..999 (0 is the pad id), stable across runs."""
    return [1 + sum((i + 1) * ord(c) for i, c in enumerate(word)) % (V - 1) for word in text.split()]


def main() -> None:
    rng = np.random.default_rng(11)
    ids = np.zeros((2, T), dtype=np.int64)
    mask = np.zeros((2, T), dtype=np.int64)
    for b, text in enumerate(TEXTS):
        tok = token_ids(text)[:T]
        ids[b, :len(tok)] = tok
        mask[b, :len(tok)] = 1
    labels = np.where(mask == 1, ids, -100)
    logits = rng.normal(0.0, 2.0, size=(2, T, V))
    for b in range(2):
        for t in range(T - 1):
            if mask[b, t + 1]:
                logits[b, t, ids[b, t + 1]] += rng.uniform(2.0, 9.0)
    n_bytes = np.array([len(text.encode("utf-8")) for text in TEXTS], dtype=np.int64)
    save_file({"logits": logits.astype(ml_dtypes.bfloat16), "labels": labels, "attention_mask": mask,
               "bytes": n_bytes}, str(HERE / "batch.safetensors"))


if __name__ == "__main__":
    main()
