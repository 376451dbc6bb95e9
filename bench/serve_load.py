"""Load benchmark of `taxonomist serve`: concurrent clients on loopback against Annif's suggest path and ours,
and batch throughput through our API beside the CLI's, on the same documents with the same encoder.

For each label set the script starts `taxonomist serve --project ID=labels:FILE` on a free port of 127.0.0.1
(a subprocess, stopped at the end), waits for /ready and warms up, then for each path runs --clients clients for
--seconds seconds, each posting one test document at a time, drawn at random, as soon as its last answer came:
  annif  POST /v1/projects/ID/suggest   form-encoded text, limit=10
  api    POST /api/projects/ID/suggest  JSON {"text": ..., "k": 10}
It reports requests/s, p50/p99 latency (client side: queueing in the server included), answers by status class
(a 5xx fails the target; connection errors are counted
apart), and the server's RSS (/proc/PID/status VmRSS) after warm-up
and after the load, with its growth. A short one-client run ("alone") gives latency without queueing.

Batch throughput: --batch-docs test documents posted to /api in batches of --batch (one client, one batch at a
time) against `taxonomist suggest --labels FILE --docs DOCS --encoder ENC` timed end to end on the same documents
(process start, model fit and output included; --no-adapt, as the server's zero-shot model, which is fitted on no
documents; the CLI's default, which adapts to the documents, is timed too). The same command on one document
gives the CLI's fixed cost (start-up, imports, label encoding), which dominates at these sizes.

Label sets: wordnet1000 (the first 1,000 wordnet-taxonomy labels that have a description, parents outside them
dropped; documents: its test split) and foldoc (91 labels). Targets from issue 21 are printed beside the figures.

usage: python bench/serve_load.py [--clients 50] [--seconds 60] [--encoder static] [--sets wordnet1000,foldoc]
                                  [--paths annif,api] [--batch 32] [--batch-docs 4000] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent
TAXONOMIST = Path(sys.executable).with_name("taxonomist")

try:
    import aiohttp  # noqa: E402
except ImportError:
    raise SystemExit("bench/serve_load.py needs aiohttp: .venv/bin/pip install -e '.[bench]'") from None
import httpx  # noqa: E402

SETS = ("wordnet1000", "foldoc")
PATHS = ("annif", "api")
TARGET_P99_MS, TARGET_RSS_GROWTH, TARGET_BATCH_RATIO = 100.0, 10.0, 0.80
LIMIT = 10  # suggestions per document on both paths


# ---------------------------------------------------------------------------- data
def build_set(data: Path, name: str, folder: Path) -> tuple[Path, list[str], int]:
    """(labels file, test texts, label count) of a set named in SETS."""
    if name == "wordnet1000":
        source = data / "wordnet-taxonomy"
        rows = []
        for line in (source / "labels.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("description"):
                rows.append(row)
            if len(rows) == 1000:
                break
        ids = {row["id"] for row in rows}
        for row in rows:
            if row.get("parent") and row["parent"] not in ids:
                row["parent"] = None
            if "parents" in row:
                row["parents"] = [p for p in row["parents"] if p in ids]
        labels = folder / "wordnet1000-labels.jsonl"
        labels.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        n_labels = len(rows)
    elif name == "foldoc":
        source = data / "foldoc"
        labels = source / "labels.jsonl"
        n_labels = sum(1 for line in labels.read_text(encoding="utf-8").splitlines() if line.strip())
    else:
        raise SystemExit(f"unknown set {name!r}: choose from {', '.join(SETS)}")
    texts = [json.loads(line)["text"] for line in (source / "test.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    return labels, texts, n_labels


def write_docs(texts: list[str], path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)),
                    encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, project: str, labels: Path, encoder: str, log: Path) -> None:
        self.project, self.port = project, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.proc = subprocess.Popen([str(TAXONOMIST), "serve", "--project", f"{project}=labels:{labels}",
                                      "--encoder", encoder, "--host", "127.0.0.1", "--port", str(self.port),
                                      "--no-store"],  # the figures are the model's and the server's, as measured
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 300.0) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.base + "/ready", timeout=2).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"the server was not ready after {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------- load
def request_for(path: str, project: str, text: str) -> dict:
    if path == "annif":
        return {"url": f"/v1/projects/{project}/suggest", "data": {"text": text, "limit": str(LIMIT)}}
    return {"url": f"/api/projects/{project}/suggest", "json": {"text": text, "k": LIMIT}}


async def load(base: str, path: str, project: str, texts: list[str], clients: int, seconds: float,
               seed: int = 0) -> dict:
    """`clients` clients, each posting one document after another for `seconds` seconds. aiohttp, not httpx:
    httpx spent a whole core of its own at 350 req/s, on the same two cores as the server it measured."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base_url=base, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        deadline = time.perf_counter() + seconds

        async def one_client(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    async with session.post(**request_for(path, project, rng.choice(texts))) as response:
                        await response.read()
                        key = f"{response.status // 100}xx"
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    key = type(error).__name__
                latencies.append(time.perf_counter() - start)
                statuses[key] = statuses.get(key, 0) + 1

        begin, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        wall, client_cpu = time.perf_counter() - begin, time.process_time() - cpu
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else None

    return {"requests": len(latencies), "wall_s": round(wall, 2), "rps": round(len(latencies) / wall, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0), "statuses": statuses,
            "failures": sum(n for key, n in statuses.items() if key not in ("2xx", "4xx")),  # 5xx + connection
            "client_cpu_s": round(client_cpu, 1)}


def batch_throughput(base: str, project: str, texts: list[str], batch: int) -> dict:
    """Every text through /api in batches of `batch`, one request at a time."""
    errors = 0
    with httpx.Client(base_url=base, timeout=httpx.Timeout(300.0)) as client:
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            body = {"documents": [{"id": str(j), "text": t} for j, t in enumerate(texts[i:i + batch], i)], "k": LIMIT}
            response = client.post(f"/api/projects/{project}/suggest", json=body)
            if response.status_code != 200 or len(response.json()["results"]) != len(body["documents"]):
                errors += 1
        seconds = time.perf_counter() - start
    return {"docs": len(texts), "batch": batch, "seconds": round(seconds, 2), "docs_per_s": round(len(texts) / seconds, 1),
            "errors": errors}


def cli_seconds(labels: Path, docs: Path, encoder: str, out: Path, adapt: bool) -> float:
    command = [str(TAXONOMIST), "suggest", "--labels", str(labels), "--docs", str(docs), "--encoder", encoder,
               "-k", str(LIMIT), "--quiet", "--out", str(out)] + ([] if adapt else ["--no-adapt"])
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- one label set
def run_set(name: str, args: argparse.Namespace, folder: Path) -> dict:
    labels, texts, n_labels = build_set(Path(args.data), name, folder)
    say = lambda text: print(f"[{name}] {text}", file=sys.stderr, flush=True)  # noqa: E731
    server = Server(name, labels, args.encoder, folder / f"{name}-server.log")
    row: dict = {"set": name, "labels": n_labels, "test_docs": len(texts), "encoder": args.encoder,
                 "clients": args.clients, "seconds": args.seconds}
    try:
        row["ready_s"] = round(server.wait_ready(), 1)
        row["rss_ready_mb"] = round(rss_mb(server.pid), 1)
        say(f"ready in {row['ready_s']} s, RSS {row['rss_ready_mb']} MB; warming up")
        for path in args.paths:  # the first requests pay for lazy imports, caches, the thread pool
            asyncio.run(load(server.base, path, name, texts, args.clients, args.warmup, seed=99))
        row["rss_before_mb"] = round(rss_mb(server.pid), 1)
        row["paths"] = {}
        for path in args.paths:
            if args.alone:
                alone = asyncio.run(load(server.base, path, name, texts, 1, args.alone, seed=7))
            cpu = cpu_s(server.pid)
            result = asyncio.run(load(server.base, path, name, texts, args.clients, args.seconds, seed=1))
            result["server_cpu_s"] = round(cpu_s(server.pid) - cpu, 1)
            result["rss_after_mb"] = round(rss_mb(server.pid), 1)
            if args.alone:
                result["alone"] = {key: alone[key] for key in ("requests", "rps", "p50_ms", "p99_ms", "statuses")}
            row["paths"][path] = result
            say(f"{path}: {result['rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
                f"{result['statuses']}, server CPU {result['server_cpu_s']} s, client CPU {result['client_cpu_s']} s")
        row["rss_after_mb"] = round(rss_mb(server.pid), 1)
        row["rss_growth_pct"] = round(100 * (row["rss_after_mb"] / row["rss_before_mb"] - 1), 1)
        batch_texts = texts[:args.batch_docs]
        batch_throughput(server.base, name, batch_texts[:args.batch * 2], args.batch)  # warm the batch path
        row["batch"] = batch_throughput(server.base, name, batch_texts, args.batch)
        say(f"batch: {row['batch']['docs_per_s']} docs/s")
    finally:
        server.stop()
    docs = write_docs(texts[:args.batch_docs], folder / f"{name}-docs.jsonl")
    one = write_docs(texts[:1], folder / f"{name}-one.jsonl")
    out = folder / f"{name}-out.tsv"
    cli = {"docs": len(batch_texts)}
    cli["no_adapt_s"] = round(cli_seconds(labels, docs, args.encoder, out, adapt=False), 2)
    cli["one_doc_s"] = round(cli_seconds(labels, one, args.encoder, out, adapt=False), 2)
    cli["adapt_s"] = round(cli_seconds(labels, docs, args.encoder, out, adapt=True), 2)
    cli["docs_per_s"] = round(len(batch_texts) / cli["no_adapt_s"], 1)
    cli["adapt_docs_per_s"] = round(len(batch_texts) / cli["adapt_s"], 1)
    row["cli"] = cli
    row["batch_ratio"] = round(row["batch"]["docs_per_s"] / cli["docs_per_s"], 2)
    say(f"CLI: {cli}")
    return row


# ---------------------------------------------------------------------------- report
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(rows: list[dict]) -> None:
    print("\n| set | path | req/s | p50 ms | p99 ms | alone p99 ms | 2xx | 4xx | 5xx | connection errors "
          "| RSS MB before → after | 0 5xx | p99 < 100 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for path, r in row["paths"].items():
            s = r["statuses"]
            other = {key: n for key, n in s.items() if not key.endswith("xx")}
            p99_target = (verdict(r["p99_ms"] < TARGET_P99_MS) if row["set"] == "wordnet1000"
                          else f"({verdict(r['p99_ms'] < TARGET_P99_MS)}, not the target's set)")
            print(f"| {row['set']} ({row['labels']:,} labels) | {path} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | "
                  f"{r.get('alone', {}).get('p99_ms', '-')} | {s.get('2xx', 0):,} | {s.get('4xx', 0):,} | "
                  f"{s.get('5xx', 0):,} | {', '.join(f'{n} {key}' for key, n in other.items()) or 0} | "
                  f"{row['rss_before_mb']} → {r['rss_after_mb']} | {verdict(s.get('5xx', 0) == 0)} | {p99_target} |")
    print("\n| set | RSS growth | < 10% | API batch docs/s | CLI docs/s end to end (adapting) | CLI on 1 doc, s "
          "| ratio | ≥ 80% |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        c = row["cli"]
        print(f"| {row['set']} | {row['rss_growth_pct']}% | {verdict(row['rss_growth_pct'] < TARGET_RSS_GROWTH)} | "
              f"{row['batch']['docs_per_s']} (batches of {row['batch']['batch']}, {row['batch']['docs']:,} docs) | "
              f"{c['docs_per_s']} ({c['adapt_docs_per_s']}) | {c['one_doc_s']} | {row['batch_ratio']} | "
              f"{verdict(row['batch_ratio'] >= TARGET_BATCH_RATIO)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of load per path before measuring")
    ap.add_argument("--alone", type=float, default=5.0, help="seconds of one client per path (0: skip)")
    ap.add_argument("--encoder", default="static", help="static (default), default (MiniLM), model2vec or a folder")
    ap.add_argument("--batch", type=int, default=32, help="documents per /api request in the batch test")
    ap.add_argument("--batch-docs", type=int, default=4000, help="documents for the batch test and the CLI")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    args.paths = [p for p in args.paths.split(",") if p]
    if unknown := set(args.paths) - set(PATHS):
        raise SystemExit(f"unknown paths {sorted(unknown)}: choose from {', '.join(PATHS)}")
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        rows = [run_set(name, args, Path(tmp)) for name in args.sets.split(",") if name]
    meta = {"date": started, "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], "command": " ".join(sys.argv)}
    print(f"\n{started}, {meta['cpus']} CPUs, load average before {meta['loadavg_before']} after "
          f"{meta['loadavg_after']}; {args.clients} clients, {args.seconds:g} s per path, encoder {args.encoder}")
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
