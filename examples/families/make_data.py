"""Write the data files of examples/families/ (deterministic; run from anywhere)."""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(2019)
    # regression: predictions and targets as CSV columns with a header
    pred = np.round(rng.normal(size=6), 3)
    target = np.round(pred + rng.normal(scale=0.8, size=6), 3)
    rows = "\n".join(f"{p!r},{t!r}" for p, t in zip(pred.tolist(), target.tolist()))
    (HERE / "regression.csv").write_text("pred,target\n" + rows + "\n")
    # margins: scores for 4 samples x 3 classes and their class indices
    np.save(HERE / "scores.npy", np.round(rng.normal(size=(4, 3)), 3))
    np.save(HERE / "labels.npy", np.array([0, 2, 1, 2]))
    # embeddings: anchor/positive/negative triplets in one archive
    a = np.round(rng.normal(size=(3, 4)), 3)
    np.savez(HERE / "triplets.npz", anchor=a, positive=np.round(a + rng.normal(scale=0.3, size=(3, 4)), 3),
             negative=np.round(rng.normal(size=(3, 4)), 3))
    # sequences: CTC log-probabilities (T=6, N=2, C=4), log-softmax of random scores
    x = rng.normal(size=(6, 2, 4))
    np.save(HERE / "ctc_log_probs.npy", x - np.log(np.exp(x).sum(axis=-1, keepdims=True)))


if __name__ == "__main__":
    main()
