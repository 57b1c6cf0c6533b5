#!/usr/bin/env python3
"""pHash (imagehash) duplicate groups on a planted benchmark folder, at its best threshold.

Hashes every image under FOLDER (64-bit pHash), joins pairs within each Hamming threshold
from 0 to 24 transitively, scores each with duplicates_score.score and prints the best
threshold's scores as JSON (the peer at its best, as its users would tune it).
"""
import json
import os
import sys
import time

import imagehash
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import duplicates_score  # noqa: E402


def main():
    folder = sys.argv[1]
    truth = duplicates_score.load_truth(folder)
    paths = sorted(truth)
    start = time.time()
    hashes = [imagehash.phash(Image.open(os.path.join(folder, p))) for p in paths]
    hash_seconds = time.time() - start
    n = len(paths)
    dist = [[hashes[i] - hashes[j] for j in range(n)] for i in range(n)]
    best = None
    for t in range(0, 25):
        parent = list(range(n))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(n):
            for j in range(i + 1, n):
                if dist[i][j] <= t:
                    parent[find(i)] = find(j)
        groups = {}
        for i in range(n):
            groups.setdefault(find(i), []).append(paths[i])
        scores = duplicates_score.score(truth, [g for g in groups.values() if len(g) > 1])
        if best is None or scores["overall"]["f1"] > best[1]["overall"]["f1"]:
            best = (t, scores)
    o = best[1]["overall"]
    print(f"best threshold {best[0]}, hashing {hash_seconds:.1f} s: precision {o['precision']:.3f} "
          f"recall {o['recall']:.3f} F1 {o['f1']:.3f}")
    print("recall by edit: " + ", ".join(
        f"{k} {v['recall']:.2f}" for k, v in best[1]["by_edit"].items()))


if __name__ == "__main__":
    main()
