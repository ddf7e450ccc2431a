"""Where kneecam's start-up goes: the dynamic loader's own statistics for the binary, and the
time to dlopen libtorch's libraries on their own (CPU part, then the CUDA part with the CUDA
libraries it needs), each in a fresh interpreter, with immediate binding as kneecam has
(Rust links with -z now). Run by scripts/bench-startup; prints a Markdown table."""
import ctypes
import os
import statistics
import subprocess
import sys
import time

LIB = os.path.join(sys.argv[1], "lib")
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 7


def dlopen_seconds(names):
    code = (
        "import ctypes, os, sys, time\n"
        "t = time.perf_counter()\n"
        f"for n in {names!r}:\n"
        f"    ctypes.CDLL(os.path.join({LIB!r}, n), mode=os.RTLD_NOW | os.RTLD_GLOBAL)\n"
        "print(time.perf_counter() - t)\n"
    )
    runs = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                 text=True).stdout) for _ in range(REPEATS)]
    return statistics.median(runs)


cpu = dlopen_seconds(["libc10.so", "libtorch_cpu.so"])
both = dlopen_seconds(["libc10.so", "libtorch_cpu.so", "libtorch_cuda.so"])
print(f"| dlopen libc10 + libtorch_cpu (static initialisers included) | {cpu * 1e3:.0f} |")
print(f"| dlopen libc10 + libtorch_cpu + libtorch_cuda (and the CUDA libraries) | {both * 1e3:.0f} |")
print(f"| of which libtorch_cuda and the CUDA libraries | {(both - cpu) * 1e3:.0f} |")
