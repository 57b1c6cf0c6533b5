#!/usr/bin/env python3
"""Pairwise precision, recall and F1 of duplicate groups against a planted benchmark.

The benchmark folder is what `lookalike eval --duplicates DIR --work FOLDER` writes: originals,
edited copies and distractors, with FOLDER/truth.tsv naming the photo and edit of each file.
Groups come from one of:
  --lookalike FILE   `lookalike duplicates --json` output
  --czkawka FILE     czkawka_cli `image --compact-file-to-save` JSON output
  --groups FILE      JSON list of lists of paths
Prints one JSON object: overall and per-edit scores (the same definitions as lookalike's
eval: every pair in one group is predicted; every pair of files of one photo is true).
"""
import argparse
import itertools
import json
import os
import sys


def load_truth(folder):
    truth = {}
    with open(os.path.join(folder, "truth.tsv")) as f:
        next(f)
        for line in f:
            path, family, edit = line.rstrip("\n").split("\t")
            truth[path] = (None if family == "-" else family, None if edit == "-" else edit)
    return truth


def rel(folder, path):
    real = os.path.realpath(path)
    base = os.path.realpath(folder)
    return os.path.relpath(real, base)


def groups_from_czkawka(data):
    # Compact JSON: a list of groups, each a list of entries with a "path".
    out = []
    for group in data:
        if isinstance(group, dict):
            group = group.get("files", group.get("entries", []))
        out.append([e["path"] if isinstance(e, dict) else e for e in group])
    return out


def score(truth, groups):
    predicted = set()
    for g in groups:
        members = sorted(p for p in g if p in truth)
        for a, b in itertools.combinations(members, 2):
            predicted.add((a, b))
    fams = {}
    for p, (f, _) in truth.items():
        if f is not None:
            fams.setdefault(f, []).append(p)
    true_pairs = set()
    for members in fams.values():
        for a, b in itertools.combinations(sorted(members), 2):
            true_pairs.add((a, b))

    def is_true(a, b):
        return truth[a][0] is not None and truth[a][0] == truth[b][0]

    def counts(keep):
        found = sum(1 for p in true_pairs if keep(*p) and p in predicted)
        missed = sum(1 for p in true_pairs if keep(*p) and p not in predicted)
        false = sum(1 for p in predicted if keep(*p) and not is_true(*p))
        precision = found / (found + false) if found + false else 1.0
        recall = found / (found + missed) if found + missed else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"found": found, "false_pairs": false, "missed": missed,
                "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}

    edits = sorted({e for _, e in truth.values() if e})
    by_edit = {}
    for e in edits:
        by_edit[e] = counts(lambda a, b, e=e: truth[a][1] == e or truth[b][1] == e)
    return {"overall": counts(lambda a, b: True), "by_edit": by_edit}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--lookalike")
    src.add_argument("--czkawka")
    src.add_argument("--groups")
    ap.add_argument("--brief", action="store_true", help="one line: overall and per-edit recall")
    args = ap.parse_args()
    truth = load_truth(args.folder)
    if args.lookalike:
        data = json.load(open(args.lookalike))
        groups = [[g["keep"]["path"]] + [c["path"] for c in g["copies"]] for g in data["groups"]]
    elif args.czkawka:
        groups = groups_from_czkawka(json.load(open(args.czkawka)))
    else:
        groups = json.load(open(args.groups))
    groups = [[rel(args.folder, p) for p in g] for g in groups]
    result = score(truth, groups)
    if args.brief:
        o = result["overall"]
        print(f"precision {o['precision']:.3f} recall {o['recall']:.3f} F1 {o['f1']:.3f} "
              f"({o['found']} found, {o['false_pairs']} false, {o['missed']} missed)")
        print("recall by edit: " + ", ".join(
            f"{k} {v['recall']:.2f}" for k, v in result["by_edit"].items()))
    else:
        json.dump(result, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
