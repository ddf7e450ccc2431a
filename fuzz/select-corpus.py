#!/usr/bin/env python3
"""Picks the corpus to commit from a libFuzzer merge control file.

    fuzz/target/x86_64-unknown-linux-gnu/release/TARGET -merge=1 -max_len=N \
        -merge_control_file=/tmp/mcf /tmp/empty-dir FULL_CORPUS_DIR
    python3 fuzz/select-corpus.py /tmp/mcf fuzz/corpus/TARGET 300

First every coverage edge (COV), greedily (most new edges first, smaller file on ties),
whatever the number of files; then the most counter features (FT) until CAP files.
"""
import os
import shutil
import sys


def main():
    mcf, out, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lines = open(mcf).read().split("\n")
    n = int(lines[0])
    files = lines[2 : 2 + n]
    feats = {"FT": {}, "COV": {}}
    for line in lines[2 + n :]:
        parts = line.split()
        if parts and parts[0] in feats:
            feats[parts[0]][int(parts[1])] = set(parts[2:])
    chosen = []

    def greedy(table, limit):
        covered = set().union(*(table.get(i, set()) for i in chosen))
        while len(chosen) < limit:
            left = [i for i in table if i not in chosen]
            if not left:
                return
            best = max(left, key=lambda i: (len(table[i] - covered), -os.path.getsize(files[i])))
            if not table[best] - covered:
                return
            covered |= table[best]
            chosen.append(best)

    greedy(feats["COV"], float("inf"))
    every_edge = len(chosen)
    greedy(feats["FT"], cap)
    os.makedirs(out, exist_ok=True)
    for i in chosen:
        shutil.copy(files[i], out)
    size = sum(os.path.getsize(files[i]) for i in chosen)
    print(f"{len(chosen)} files ({every_edge} for every edge), {size} bytes")


if __name__ == "__main__":
    main()
