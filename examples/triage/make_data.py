"""Write the data files of examples/triage/ (deterministic; run from anywhere).

* ``reference.npz`` / ``port.npz``: one model's outputs dumped twice, by a float64 reference and
  by a float32 port with one wrong logit (``lossctl diff`` finds it);
* ``batch_logits.npy`` / ``batch_target.npy``: 300 samples of 5 classes, a few of them
  mislabelled (``--top`` and ``--hist`` show them).
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(14)
    hidden = rng.standard_normal((16, 8))
    logits = hidden @ rng.standard_normal((8, 5)) / 3
    np.savez(HERE / "reference.npz", hidden=hidden, logits=logits)
    port_logits = logits.astype(np.float32)
    port_logits[11, 3] += np.float32(2e-3)  # the port's bug
    np.savez(HERE / "port.npz", hidden=hidden.astype(np.float32), logits=port_logits)

    n, c = 300, 5
    target = rng.integers(0, c, size=n)
    scores = rng.standard_normal((n, c))
    scores[np.arange(n), target] += 3.0  # a confident, mostly right model
    wrong = rng.choice(n, size=6, replace=False)
    target[wrong] = (target[wrong] + 1 + rng.integers(0, c - 1, size=6)) % c  # mislabelled samples
    np.save(HERE / "batch_logits.npy", np.round(scores, 4))
    np.save(HERE / "batch_target.npy", target)


if __name__ == "__main__":
    main()
