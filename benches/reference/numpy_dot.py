"""NumPy's own float32 `w.dot(A)` on random CAM-like inputs, for tests/precompute/blas_order.rs:
writes, for each shape, w (C,), A (C, cells) and NumPy's result as .npy files into OUT, and prints
the OpenBLAS kernel set in use (`OPENBLAS_CORETYPE` chooses it).
  numpy_dot.py OUT
"""
import ctypes
import glob
import os
import sys

import numpy as np

SHAPES = [(256, 49), (256, 225), (512, 256), (64, 17), (256, 16)]


def corename():
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for lib in libs:
        function = getattr(ctypes.CDLL(lib), "scipy_openblas_get_corename64_", None)
        if function is not None:
            function.restype = ctypes.c_char_p
            return function().decode()
    return "unknown"


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    for channels, cells in SHAPES:
        for trial in range(4):
            w = (rng.standard_normal(channels) * 0.05).astype(np.float32)
            # Post-ReLU features: non-negative, many zeros.
            a = np.maximum(rng.standard_normal((channels, cells)), 0).astype(np.float32) * 3
            name = f"{channels}x{cells}-{trial}"
            np.save(os.path.join(out, f"{name}-w.npy"), w)
            np.save(os.path.join(out, f"{name}-a.npy"), a)
            np.save(os.path.join(out, f"{name}-dot.npy"), w.dot(a))
    print(corename())


if __name__ == "__main__":
    main(sys.argv[1])
