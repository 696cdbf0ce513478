"""Write the tensor-file fixtures of tests/test_tensor_files.py (needs torch and safetensors).

    python tests/tools/make_tensor_fixtures.py

Writes into tests/fixtures/tensors/:

* ``dtypes.safetensors`` (safetensors' own writer) and ``dtypes.pt`` (``torch.save``):
  one small tensor per dtype, the float ones holding every special value
  (signed zeros, subnormals, the largest finite, inf and NaN where the format has
  them); ``dtypes.pt`` also holds a nested dict and a strided, offset view;
* ``expected.npz``: each tensor's values as torch gives them (``.double()`` for
  floats: exact for every format here), the oracle when torch is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "tensors"

FLOATS = {"f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16,
          "f8_e4m3": torch.float8_e4m3fn, "f8_e5m2": torch.float8_e5m2}
INTS = {"i8": torch.int8, "i16": torch.int16, "i32": torch.int32, "i64": torch.int64, "u8": torch.uint8,
        "u16": torch.uint16, "u32": torch.uint32, "u64": torch.uint64}


def special_values(dtype: torch.dtype) -> torch.Tensor:
    info = torch.finfo(dtype)
    values = [0.0, -0.0, 1.0, -1.5, info.tiny, -info.tiny, info.smallest_normal / 4, info.max, -info.max,
              info.eps, 3.140625, -448.0 if info.max >= 448 else -2.0]
    t = torch.tensor(values, dtype=torch.float64).to(dtype)
    if dtype != torch.float8_e4m3fn:
        t = torch.cat([t, torch.tensor([float("inf"), float("-inf")], dtype=torch.float64).to(dtype)])
    t = torch.cat([t, torch.tensor([float("nan")], dtype=torch.float64).to(dtype)])
    n = t.numel()
    return torch.cat([t, torch.zeros(16 - n % 16 if n % 16 else 0, dtype=dtype)]).reshape(-1, 4)


def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {name: special_values(dt) for name, dt in FLOATS.items()}
    for name, dt in INTS.items():
        info = torch.iinfo(dt)
        out[name] = torch.tensor([info.min, info.max, 0, 1, 7, info.max // 3], dtype=dt).reshape(2, 3)
    out["bool"] = torch.tensor([[True, False, True], [False, False, True]])
    out["logits"] = (torch.randn(2, 3, 5, generator=g) * 4).to(torch.bfloat16)
    out["scalar"] = torch.tensor(2.5, dtype=torch.float32)
    out["empty"] = torch.zeros(0, 3, dtype=torch.float32)
    return out


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.double().numpy() if t.dtype.is_floating_point else t.numpy()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    ts = tensors()
    save_file(ts, str(OUT / "dtypes.safetensors"))
    base = torch.arange(40, dtype=torch.float64).reshape(5, 8)
    pt = dict(ts)
    pt["nested"] = {"model": {"head": ts["logits"]}, "list": [ts["f32"], ts["i64"]]}
    pt["strided"] = base[1:4, ::3]  # an offset into a shared storage, non-unit strides
    pt["transposed"] = base.t()
    torch.save(pt, OUT / "dtypes.pt")
    expected = {k: as_numpy(v) for k, v in ts.items()}
    expected["strided"] = base[1:4, ::3].numpy()
    expected["transposed"] = base.t().numpy()
    np.savez(OUT / "expected.npz", **expected)
    (OUT / "VERSIONS.txt").write_text(f"torch {torch.__version__}\nnumpy {np.__version__}\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
