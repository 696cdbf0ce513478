"""Write the data files of examples/ci/seeds.yaml (NumPy only).

    python examples/ci/make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    DATA.mkdir(exist_ok=True)
    # cross entropy: the seed logits and class indices (two formats)
    np.save(DATA / "seed_logits.npy", np.array([[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]))
    (DATA / "seed_target.csv").write_text("label\n0\n2\n")
    # BCE: probabilities as CSV without a header, 0/1 targets as TSV
    (DATA / "bce_probs.csv").write_text("0.6,0.1\n0.3,0.8\n")
    (DATA / "bce_target.tsv").write_text("0\t1\n1\t0\n")
    # NLL on raw scores (not log-probabilities; torch takes them as given)
    (DATA / "nll_scores.txt").write_text("2 3 1\n3 7 9\n")
    # segmentation-shaped CE: input (N, C, d1) = (2, 2, 2), target (N, d1), class weights
    np.savez(DATA / "seg.npz", logits=np.array([[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]]),
             target=np.array([[0, 0], [1, 1]]))
    (DATA / "class_weight.txt").write_text("1.0\n9.0\n")


if __name__ == "__main__":
    main()
