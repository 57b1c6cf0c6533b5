#!/usr/bin/env python3
"""Load test of `lookalike serve` on loopback (standard library only).

1. Query pages one at a time: GET /api/images/ID (look-alikes of an indexed image) for random
   ids, and POST /api/query with an uploaded JPEG; p50/p99 latency.
2. CONCURRENCY requests at once (threads), mixing the start page, grid pages, thumbnails, image
   pages and uploads: how many were answered with 200, p50/p99 per kind and overall.

Usage: serve_load.py URL EXAMPLE.jpg [--queries 300] [--concurrency 200] [--json]
"""
import argparse, json, random, re, statistics, threading, time, urllib.request

def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url"); ap.add_argument("example")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--poll-while", type=int, metavar="PID",
        help="after the load test, request pages until process PID (an `index` run) ends")
    a = ap.parse_args()
    base = a.url.rstrip("/")
    page = urllib.request.urlopen(base + "/").read().decode()
    token = re.search(r'name="lookalike-token" content="([0-9a-f]+)"', page).group(1)
    upload = open(a.example, "rb").read()
    status = json.load(urllib.request.urlopen(base + "/api/status"))
    total = status["images"]
    ids = [i["id"] for i in json.load(urllib.request.urlopen(f"{base}/api/images?limit=500&offset={max(0, total // 2 - 250)}"))["images"]]
    rng = random.Random(1)

    def get(path):
        t = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=120) as r:
            r.read(); code = r.status
        return code, (time.perf_counter() - t) * 1000

    def post_query():
        req = urllib.request.Request(base + "/api/query?k=24", data=upload, method="POST",
            headers={"x-lookalike-token": token, "content-type": "application/octet-stream"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read(); code = r.status
        return code, (time.perf_counter() - t) * 1000

    get(f"/api/images/{ids[0]}")  # loads the search space
    page_ms = [get(f"/api/images/{rng.choice(ids)}")[1] for _ in range(a.queries)]
    upload_ms = [post_query()[1] for _ in range(a.queries // 5)]

    kinds = ["page", "grid", "thumb", "image", "upload"]
    plan = [kinds[i % len(kinds)] for i in range(a.concurrency)]
    results = [None] * len(plan)
    barrier = threading.Barrier(max(1, len(plan)))
    def worker(i, kind):
        barrier.wait()
        try:
            if kind == "page": results[i] = (kind,) + get("/")
            elif kind == "grid": results[i] = (kind,) + get(f"/api/images?offset={rng.randrange(max(1, total - 60))}&limit=60")
            elif kind == "thumb": results[i] = (kind,) + get(f"/thumbs/{rng.choice(ids)}")
            elif kind == "image": results[i] = (kind,) + get(f"/api/images/{rng.choice(ids)}")
            else: results[i] = (kind,) + post_query()
        except Exception as e:
            results[i] = (kind, str(e), float("nan"))
    threads = [threading.Thread(target=worker, args=(i, k)) for i, k in enumerate(plan)]
    t0 = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if r and r[1] == 200]
    out = {
        "images": total,
        "query_page_ms": {"n": len(page_ms), "p50": pct(page_ms, 50), "p99": pct(page_ms, 99)},
        "upload_query_ms": {"n": len(upload_ms), "p50": pct(upload_ms, 50), "p99": pct(upload_ms, 99)},
        "concurrent": {
            "requests": len(plan), "answered_200": len(ok), "wall_s": wall,
            "p50_ms": pct([r[2] for r in ok], 50), "p99_ms": pct([r[2] for r in ok], 99),
            "by_kind": {k: {"n": sum(1 for r in ok if r[0] == k),
                            "p50_ms": pct([r[2] for r in ok if r[0] == k], 50),
                            "p99_ms": pct([r[2] for r in ok if r[0] == k], 99)} for k in kinds},
            "errors": sorted({str(r[1]) for r in results if r and r[1] != 200}),
        },
    }
    if a.poll_while:
        import os
        answered, failed, lat = 0, [], []
        while True:
            try:
                os.kill(a.poll_while, 0)
            except ProcessLookupError:
                break
            for path in ("/api/folders", f"/api/images/{rng.choice(ids)}"):
                try:
                    code, ms = get(path); answered += 1; lat.append(ms)
                except Exception as e:
                    failed.append(str(e))
            time.sleep(0.1)
        after = json.load(urllib.request.urlopen(base + "/api/folders"))["images"]
        out["during_index"] = {"answered": answered, "failed": len(failed), "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99), "max_ms": max(lat) if lat else float("nan"),
            "images_before": total, "images_after": after, "errors": sorted(set(failed))[:5]}
    if a.json:
        print(json.dumps(out, indent=1))
        return
    q, u, c = out["query_page_ms"], out["upload_query_ms"], out["concurrent"]
    print(f"index of {total} images")
    if q["n"]: print(f"query page (look-alikes of an indexed image), one at a time: p50 {q['p50']:.1f} ms, p99 {q['p99']:.1f} ms ({q['n']} requests)")
    if u["n"]: print(f"search by upload, one at a time: p50 {u['p50']:.1f} ms, p99 {u['p99']:.1f} ms ({u['n']} requests)")
    if c["requests"]: print(f"{c['requests']} concurrent requests: {c['answered_200']} answered 200 in {c['wall_s']:.2f} s; p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms")
    for k, v in c["by_kind"].items() if c["requests"] else []:
        print(f"  {k:6s} n={v['n']:3d}  p50 {v['p50_ms']:.1f} ms  p99 {v['p99_ms']:.1f} ms")
    if c["errors"]:
        print("errors:", "; ".join(c["errors"]))
    if "during_index" in out:
        d = out["during_index"]
        print(f"while `index` ran: {d['answered']} requests answered, {d['failed']} failed; p50 {d['p50_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms, max {d['max_ms']:.1f} ms; images {d['images_before']} -> {d['images_after']} afterwards")

if __name__ == "__main__":
    main()
