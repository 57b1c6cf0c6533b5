#!/usr/bin/env python3
"""Re-score `lookalike eval --dump-rankings FILE` output independently of the Rust code.

Usage:
  crosscheck_eval.py RANKINGS.jsonl [--groundtruth TSV] [--peer PATH/peer_baseline.py]
  crosscheck_eval.py --synthetic [--n 120] [--classes 12] [--ties] [--peer PATH]
      [--write-rankings FILE]

The rankings file (see src/eval/rankings.rs) is JSON lines in sections: a header line
{"format":"lookalike-rankings","version":1,"family":..,"mode":..,"groundtruth":PATH,"images":DIR},
then {"query":NAME,"ranking":[NAME,...]} per query (best first, query included), then optionally
{"summary":{"queries":N,"map":..,"p_at_10":..,"ns":..}} with lookalike's own figures.

For each section the script computes mAP, P@10 (query excluded) and the N-S score (top 4,
query included) two ways:
  peer  - peer_baseline.py's `scores(dist, labels)` on a distance matrix whose row q is the rank
          position of each item in q's ranking (so numpy's stable argsort reproduces the ranking
          exactly). With --peer the function is taken from that file (imported, or, when its
          heavy imports such as cv2 are missing, extracted from the source); otherwise the copy
          in this script, written to the same definition, is used;
  indep - a plain-Python scorer that works on the ranked name lists directly.
It prints both (and lookalike's, when the file has a summary line) and whether all agree to
4 decimals (|difference| <= 5e-5). Exit status: 0 agree, 1 disagree, 2 bad input.

--synthetic builds a random labelled distance matrix with the same SplitMix64 generator as
tests/eval_metrics.rs, scores it with peer `scores`, and prints the figures the Rust test
expects; with --write-rankings it also writes the corresponding rankings file and cross-checks it.
Needs numpy.
"""
import argparse
import ast
import importlib.util
import json
import math
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("crosscheck_eval.py needs numpy: pip install numpy (or use a venv that has it)")

TOL = 5e-5


# ---------------------------------------------------------------- peer-equivalent scorer
def scores_local(dist, labels):
    """Same definition as peer_baseline.py `scores`: returns (mAP, P@10, N-S)."""
    n = len(labels)
    aps, p10, ns = [], [], []
    for q in range(n):
        order = np.argsort(dist[q], kind="stable")
        ns.append(np.sum(labels[order[:4]] == labels[q]))      # top 4, query included
        order = order[order != q]                               # query excluded below
        rel = labels[order] == labels[q]
        nrel = rel.sum()
        prec = np.cumsum(rel) / np.arange(1, len(rel) + 1)
        aps.append((prec * rel).sum() / max(nrel, 1))
        p10.append(rel[:10].mean())
    return np.mean(aps), np.mean(p10), np.mean(ns)


def load_peer_scores(path):
    """Returns (scores function, how it was loaded) from peer_baseline.py at `path`."""
    try:
        spec = importlib.util.spec_from_file_location("peer_baseline", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.scores, "imported"
    except ImportError:
        # its module-level imports (cv2, hnswlib, ...) are missing: take `scores` from the source
        with open(path) as f:
            tree = ast.parse(f.read(), filename=path)
        fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "scores"]
        if not fn:
            raise SystemExit(f"{path}: no function `scores` found")
        module = ast.Module(body=fn, type_ignores=[])
        ns = {"np": np}
        exec(compile(module, path, "exec"), ns)
        return ns["scores"], "extracted from source (its other imports are not installed)"


# ---------------------------------------------------------------- independent scorer
def scores_rankings(rankings, label_of):
    """Plain-Python scores from ranked name lists: (mAP, P@10, N-S), peer conventions."""
    count = {}
    for lab in label_of.values():
        count[lab] = count.get(lab, 0) + 1
    ap_sum = p10_sum = ns_sum = 0.0
    for query, ranked in rankings:
        lab = label_of[query]
        total_rel = count[lab] - 1
        if query in ranked:
            top4 = ranked[:4]
        else:                                   # query not returned: it is first (distance 0)
            top4 = [query] + ranked[:3]
        ns_sum += sum(1 for x in top4 if label_of.get(x) == lab)
        hits = 0
        ap = 0.0
        p10_hits = 0
        rank = 0
        for x in ranked:
            if x == query:
                continue
            rank += 1
            if label_of.get(x) == lab:
                hits += 1
                ap += hits / rank
                if rank <= 10:
                    p10_hits += 1
        ap_sum += ap / max(total_rel, 1)
        p10_sum += p10_hits / 10.0
    n = len(rankings)
    return ap_sum / n, p10_sum / n, ns_sum / n


# ---------------------------------------------------------------- input
def read_groundtruth(path):
    names, labels = [], []
    with open(path) as f:
        rows = [l.rstrip("\n").rstrip("\r").split("\t") for l in f][1:]
    for i, r in enumerate(rows, start=2):
        if r == [""]:
            continue
        if len(r) < 2:
            raise SystemExit(f"{path}:{i}: expected file<TAB>label")
        names.append(r[0])
        labels.append(int(r[1]))
    return names, np.array(labels)


def read_sections(path):
    sections = []
    with open(path) as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{i}: not JSON: {e}")
            if "format" in obj:
                if obj["format"] != "lookalike-rankings":
                    raise SystemExit(f"{path}:{i}: not a lookalike rankings file")
                sections.append({"header": obj, "rankings": [], "summary": None})
            elif not sections:
                raise SystemExit(f"{path}:{i}: data before the first header line")
            elif "summary" in obj:
                sections[-1]["summary"] = obj["summary"]
            else:
                sections[-1]["rankings"].append((obj["query"], obj["ranking"]))
    if not sections:
        raise SystemExit(f"{path}: empty rankings file")
    return sections


def distance_from_rankings(rankings, names):
    """Row q: rank position of each ranked item; unranked items after them, in file order."""
    idx = {n: i for i, n in enumerate(names)}
    n = len(names)
    dist = np.empty((n, n), dtype=np.float64)
    dist[:] = n + np.arange(n)[None, :]            # unranked: after everything ranked
    queries = []
    truncated = 0
    for q, ranked in rankings:
        qi = idx[q]
        queries.append(qi)
        if q not in ranked:
            dist[qi, qi] = -1.0                    # absent query is first (distance 0 to itself)
        for pos, name in enumerate(ranked):
            dist[qi, idx[name]] = pos
        if len(set(ranked) | {q}) < n:
            truncated += 1
    return dist, queries, truncated


# ---------------------------------------------------------------- comparison
def fmt(m):
    return f"mAP={m[0]:.4f} P@10={m[1]:.4f} NS={m[2]:.4f}"


def agree(a, b):
    return all(abs(float(x) - float(y)) <= TOL for x, y in zip(a, b))


def check_section(sec, gt_override, peer_fn, peer_how):
    h = sec["header"]
    gt = gt_override or h.get("groundtruth")
    if not gt:
        print("  no groundtruth in the section header; pass --groundtruth TSV", file=sys.stderr)
        return None
    names, labels = read_groundtruth(gt)
    known = set(names)
    bad = [q for q, r in sec["rankings"] for x in [q] + r if x not in known]
    if bad:
        print(f"  {len(bad)} name(s) not in {gt}, e.g. {bad[0]!r}", file=sys.stderr)
        return None
    label_of = dict(zip(names, labels.tolist()))
    print(f"[{h.get('family')} / {h.get('mode')}] {len(sec['rankings'])} queries, groundtruth {gt}")
    dist, queries, truncated = distance_from_rankings(sec["rankings"], names)
    ok = True
    if sorted(queries) != list(range(len(names))):
        print("  note: peer scores need every labelled image as a query; peer figures skipped")
        peer = None
    else:
        peer = peer_fn(dist, labels)
        print(f"  peer  ({peer_how}): {fmt(peer)}")
    if truncated:
        print(f"  warning: {truncated} ranking(s) do not cover the whole database; peer ranks the "
              "missing items last, the Rust metrics count them as not retrieved")
    indep = scores_rankings(sec["rankings"], label_of)
    print(f"  indep (plain Python ranked lists): {fmt(indep)}")
    if peer is not None:
        same = agree(peer, indep)
        ok &= same
        print(f"  peer vs indep agree to 4 decimals: {'yes' if same else 'NO'}")
    s = sec["summary"]
    if s is not None:
        rust = (s["map"], s["p_at_10"] if s.get("p_at_10") is not None else float("nan"), s["ns"])
        print(f"  lookalike (summary line):          {fmt(rust)}")
        ref = peer if peer is not None else indep
        same = agree(rust, ref)
        ok &= same
        diffs = " ".join(f"{abs(float(a) - float(b)):.1e}" for a, b in zip(rust, ref))
        print(f"  lookalike vs {'peer' if peer is not None else 'indep'} agree to 4 decimals: "
              f"{'yes' if same else 'NO'} (|diff| mAP/P@10/NS: {diffs})")
    return ok


# ---------------------------------------------------------------- synthetic data
MASK = (1 << 64) - 1


class SplitMix64:
    """Same generator as the Rust test (tests/eval_metrics.rs)."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def unit(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))


def synthetic(n, classes, seed, ties):
    """Labels i % classes; d[i][j] = u + (0 if same label else 0.35), optionally quantised."""
    rng = SplitMix64(seed)
    labels = np.array([i % classes for i in range(n)])
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            u = rng.unit()
            if ties:
                u = math.floor(u * 8.0) / 8.0
            dist[i, j] = 0.0 if i == j else u + (0.0 if labels[i] == labels[j] else 0.35)
    return dist, labels


def write_synthetic_rankings(path, dist, labels, fig):
    d = os.path.dirname(os.path.abspath(path))
    gt = os.path.join(d, "synthetic_groundtruth.tsv")
    names = [f"img{i:04d}.jpg" for i in range(len(labels))]
    with open(gt, "w") as f:
        f.write("filename\tlabel\n")
        for nm, lab in zip(names, labels):
            f.write(f"{nm}\t{lab}\n")
    with open(path, "w") as f:
        f.write(json.dumps({"format": "lookalike-rankings", "version": 1, "family": "synthetic",
                            "mode": "exact", "groundtruth": gt, "images": None}) + "\n")
        for q in range(len(labels)):
            order = np.argsort(dist[q], kind="stable")
            f.write(json.dumps({"query": names[q], "ranking": [names[i] for i in order]}) + "\n")
        f.write(json.dumps({"summary": {"queries": len(labels), "map": float(fig[0]),
                                        "p_at_10": float(fig[1]), "ns": float(fig[2])}}) + "\n")
    return gt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rankings", nargs="?", help="file written by lookalike eval --dump-rankings")
    ap.add_argument("--groundtruth", help="groundtruth.tsv (default: the path in each section header)")
    ap.add_argument("--peer", help="path to peer_baseline.py, to use its own `scores`")
    ap.add_argument("--synthetic", action="store_true", help="score a synthetic distance matrix")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--classes", type=int, default=12)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--ties", action="store_true", help="quantise synthetic distances (many ties)")
    ap.add_argument("--write-rankings", help="with --synthetic: also write a rankings file here")
    a = ap.parse_args()

    if a.peer:
        if not os.path.isfile(a.peer):
            print(f"{a.peer}: not found; omit --peer to use the built-in copy of `scores`", file=sys.stderr)
            return 2
        peer_fn, peer_how = load_peer_scores(a.peer)
        peer_how = f"{os.path.basename(a.peer)}, {peer_how}"
    else:
        peer_fn, peer_how = scores_local, "built-in copy"

    if a.synthetic:
        dist, labels = synthetic(a.n, a.classes, a.seed, a.ties)
        fig = peer_fn(dist, labels)
        local = scores_local(dist, labels)
        print(f"synthetic n={a.n} classes={a.classes} seed={a.seed} ties={a.ties}")
        print(f"  peer  ({peer_how}): mAP={fig[0]:.10f} P@10={fig[1]:.10f} NS={fig[2]:.10f}")
        print(f"  built-in copy:      mAP={local[0]:.10f} P@10={local[1]:.10f} NS={local[2]:.10f}")
        ok = agree(fig, local)
        if a.write_rankings:
            write_synthetic_rankings(a.write_rankings, dist, labels, fig)
            for sec in read_sections(a.write_rankings):
                ok &= bool(check_section(sec, None, peer_fn, peer_how))
        print("AGREE" if ok else "DISAGREE")
        return 0 if ok else 1

    if not a.rankings:
        ap.error("give a rankings file or --synthetic")
    if not os.path.isfile(a.rankings):
        print(f"{a.rankings}: not found; write it with `lookalike eval --dump-rankings FILE`", file=sys.stderr)
        return 2
    results = [check_section(s, a.groundtruth, peer_fn, peer_how) for s in read_sections(a.rankings)]
    if any(r is None for r in results):
        return 2
    ok = all(results)
    print("AGREE" if ok else "DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
