"""Load benchmark of the scoring service, side by side with `mlflow models serve` on the same model.

Run from the project root, after `dualscreen corpus` and a training run have registered a champion:

    .venv/bin/python bench/serve.py                      # ~4 min: dualscreen and mlflow, default scenarios
    .venv/bin/python bench/serve.py --skip-mlflow --seconds 5 --json var/bench.json
    .venv/bin/python bench/serve.py --url http://host:8000 --key "$KEY" --skip-mlflow

Each scenario (items per request x explain x concurrent clients) runs for `--warmup` seconds, whose requests
are discarded, then for `--seconds` measured. The script reports targets as PASS/FAIL and exits 0 whatever
they say; it exits non-zero only when a server cannot be started or a key cannot be created.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
CORPUS = ROOT / "data" / "corpus" / "test.parquet"
SEED = 20240601
console = Console()
COLUMNS: tuple[str, ...] = ("server", "items", "explain", "clients", "requests", "desc/s")
COLUMNS += ("p50", "p95", "p99", "errors")


class ServerError(RuntimeError):
    """A server or the key it needs could not be started."""


@dataclass
class Result:
    """One scenario's measured numbers."""

    server: str
    size: int
    explain: str
    clients: int
    requests: int
    errors: int
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class Target:
    """A server to load: where to send requests and how to shape them."""

    name: str
    url: str
    headers: dict[str, str]
    body: Callable[[list[tuple[str, str]], bool], dict[str, Any]]
    check: Callable[[Any, int], bool]
    explains: tuple[str, ...]


class Pool:
    """Descriptions handed out cyclically, so that each request carries different text."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows
        self.cursor = 0

    def take(self, n: int) -> list[tuple[str, str]]:
        """Return the next n (description, hs_code) rows, wrapping at the end."""
        out = [self.rows[(self.cursor + i) % len(self.rows)] for i in range(n)]
        self.cursor = (self.cursor + n) % len(self.rows)
        return out


def build_pool(path: Path, share: float, seed: int = SEED) -> list[tuple[str, str]]:
    """Sample test rows so that `share` of them are positives, shuffled with a fixed seed."""
    if not path.exists():
        sys.exit(f"{path} is missing: build the corpus first with `.venv/bin/dualscreen corpus`.")
    frame = pd.read_parquet(path, columns=["text", "hs_code", "label"])
    pos, neg = frame[frame["label"] == 1], frame[frame["label"] == 0]
    total = min(len(pos) / share if share > 0 else math.inf, len(neg) / (1 - share) if share < 1 else math.inf)
    n_pos = min(len(pos), round(total * share))
    n_neg = min(len(neg), round(total - n_pos))
    rows = pd.concat([pos.sample(n_pos, random_state=seed), neg.sample(n_neg, random_state=seed)])
    rows = rows.sample(frac=1.0, random_state=seed)
    return list(zip(rows["text"].astype(str), rows["hs_code"].fillna("").astype(str), strict=True))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks, as numpy's default; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(
    server: str, size: int, explain: str, clients: int, latencies: Sequence[float], kinds: Counter[str], elapsed: float
) -> Result:
    """Turn per-request latencies (s) and error kinds into a Result; throughput counts successful requests only."""
    ms = [x * 1000 for x in latencies]
    errors = sum(kinds.values())
    per_second = len(latencies) * size / elapsed if elapsed > 0 else 0.0
    p50, p95, p99 = (percentile(ms, q) for q in (50, 95, 99))
    return Result(
        server, size, explain, clients, len(latencies) + errors, errors, per_second, p50, p95, p99, dict(kinds)
    )


def body_of(response: httpx.Response) -> Any:
    """The response's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


async def load(
    client: httpx.AsyncClient, target: Target, pool: Pool, size: int, explain: bool, clients: int, seconds: float
) -> tuple[list[float], Counter[str], float]:
    """Run `clients` workers sending requests back to back for `seconds`; return latencies, errors, elapsed."""
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    start = time.perf_counter()
    end = start + seconds

    async def worker() -> None:
        while (now := time.perf_counter()) < end:
            rows = pool.take(size)
            try:
                response = await client.post(target.url, json=target.body(rows, explain), headers=target.headers)
            except httpx.HTTPError as exc:
                kinds[type(exc).__name__] += 1
                continue
            took = time.perf_counter() - now
            if response.status_code != 200:
                kinds[str(response.status_code)] += 1
                if response.status_code in (429, 503):  # back off as a real client would, but stay within the run
                    try:
                        wait = float(response.headers.get("Retry-After", "1"))
                    except ValueError:  # an HTTP date rather than seconds: use the cap
                        wait = 1.0
                    await asyncio.sleep(max(0.0, min(wait, 1.0, end - time.perf_counter())))
            elif not target.check(body_of(response), size):
                kinds["bad body"] += 1
            else:
                latencies.append(took)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, kinds, time.perf_counter() - start


async def bench(target: Target, pool: Pool, args: argparse.Namespace) -> list[Result]:
    """Run every scenario against one target through a single connection pool."""
    results: list[Result] = []
    limits = httpx.Limits(max_connections=max(args.clients), max_keepalive_connections=max(args.clients))
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0)) as client:
        for size, explain, clients in itertools.product(args.sizes, target.explains, args.clients):
            console.log(f"{target.name}: {size} item(s), explain {explain}, {clients} client(s)")
            flag = explain == "yes"
            await load(client, target, pool, size, flag, clients, args.warmup)
            lat, kinds, elapsed = await load(client, target, pool, size, flag, clients, args.seconds)
            results.append(summarize(target.name, size, explain, clients, lat, kinds, elapsed))
    return results


def tracking_uri() -> str:
    """The tracking URI the project uses: DUALSCREEN_TRACKING_URI, MLFLOW_TRACKING_URI, then the local SQLite."""
    env = os.environ.get("DUALSCREEN_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    return env or f"sqlite:///{ROOT / 'mlflow.db'}"


def server_env() -> dict[str, str]:
    """The user's environment, offline, with the per-key rate limit out of the way."""
    # mlflow models serve runs `uvicorn` by name: the project's environment must come first on PATH.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "HF_HUB_OFFLINE": "1", "DUALSCREEN_RATE_LIMIT": "100000000/minute"}


def create_key() -> str:
    """Create a screening API key and return it (the last word of stdout); never printed."""
    cmd = [str(BIN / "dualscreen"), "keys", "create", "--role", "screening", "--name", "bench"]
    done = subprocess.run(cmd, cwd=ROOT, env=server_env(), capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise ServerError(f"`dualscreen keys create` failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return lines[-1].split()[-1]


def start(cmd: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, stderr to `log`, stdout (access logs) discarded."""
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, log: IO[bytes], name: str) -> None:
    """Poll `url` until it answers 200; raise with the server's stderr tail if it exits or times out."""
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {name} at {url}"):
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    log.flush()
    tail = Path(log.name).read_bytes()[-3000:].decode(errors="replace")
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout:.0f} s"
    raise ServerError(f"{name} {state}; stderr tail:\n{tail}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a started server's process group, wait, then kill what is left."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def dualscreen_target(url: str, key: str) -> Target:
    """The scoring API: items with ids and HS codes, explain on or off."""

    def body(rows: list[tuple[str, str]], explain: bool) -> dict[str, Any]:
        items = [{"id": f"r{i}", "description": d, **({"hs_code": hs} if hs else {})} for i, (d, hs) in enumerate(rows)]
        return {"items": items, "explain": explain}

    def check(data: Any, size: int) -> bool:
        return isinstance(data, dict) and len(data.get("results", [])) == size

    headers = {"Authorization": f"Bearer {key}"}
    return Target("dualscreen", f"{url.rstrip('/')}/v1/score", headers, body, check, ("no", "yes"))


def mlflow_target(url: str) -> Target:
    """MLflow's generic pyfunc endpoint; the model explains every row whatever is asked."""

    def body(rows: list[tuple[str, str]], explain: bool) -> dict[str, Any]:
        return {"dataframe_records": [{"description": d} for d, _ in rows]}

    def check(data: Any, size: int) -> bool:
        return isinstance(data, dict) and "predictions" in data

    return Target("mlflow", f"{url.rstrip('/')}/invocations", {}, body, check, ("always",))


def find(results: list[Result], server: str, size: int, explain: str, clients: int | None = None) -> list[Result]:
    """Results matching a scenario; all concurrency levels when clients is None."""
    return [
        r for r in results if (r.server, r.size, r.explain) == (server, size, explain) and clients in (None, r.clients)
    ]


def targets(results: list[Result]) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """Check the latency and throughput targets; return PASS/FAIL/SKIP lines and the mlflow ratios."""
    checks: list[dict[str, Any]] = []
    single = find(results, "dualscreen", 1, "yes", 8)
    batch = find(results, "dualscreen", 64, "no")
    ml = find(results, "mlflow", 64, "always", 8)
    ratios: dict[str, float | None] = {}
    for explain in ("no", "yes"):
        ds = find(results, "dualscreen", 64, explain, 8)
        ok = ds and ml and ml[0].per_second > 0
        ratios[f"explain_{explain}"] = ds[0].per_second / ml[0].per_second if ok else None

    def add(name: str, value: float | None, op: str, limit: float) -> None:
        # None: the scenario was not run; nan: it ran but no request succeeded, which fails.
        passed = value is not None and (value <= limit if op == "<=" else value >= limit)
        verdict = "SKIP" if value is None else ("PASS" if passed else "FAIL")
        shown = None if value is None or math.isnan(value) else value
        checks.append({"target": name, "value": shown, "goal": f"{op} {limit:g}", "verdict": verdict})

    add("1 item, explain, 8 clients: p50 ms", single[0].p50_ms if single else None, "<=", 15)
    add("1 item, explain, 8 clients: p99 ms", single[0].p99_ms if single else None, "<=", 60)
    add("64 items, no explain: best descriptions/s", max((r.per_second for r in batch), default=None), ">=", 1000)
    add("64 items, no explain, 8 clients: x mlflow", ratios["explain_no"], ">=", 3)
    return checks, ratios


def report(results: list[Result], args: argparse.Namespace) -> dict[str, Any]:
    """Print the scenario table, the mlflow comparison and the targets; return them for --json."""
    title = f"POST scoring load, {args.positive_share:.0%} positives: {args.seconds:g} s per scenario"
    caption = "items: descriptions per request; desc/s: descriptions scored per second; p50-p99: latency in ms"
    kw: dict[str, Any] = {"caption": caption, "box": box.SIMPLE_HEAD, "padding": (0, 0), "pad_edge": False}
    table = Table(title=f"{title} after {args.warmup:g} s warm-up", **kw)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("server", "explain") else "right", no_wrap=True)
    for r in results:
        cells = [r.server, str(r.size), r.explain, str(r.clients), str(r.requests), f"{r.per_second:,.0f}"]
        cells += [f"{v:.1f}" for v in (r.p50_ms, r.p95_ms, r.p99_ms)]
        table.add_row(*cells, f"[red]{r.errors}[/red]" if r.errors else "0")
    console.print(table)
    for r in results:
        if r.errors:
            console.print(f"[red]errors[/red] {r.server} {r.size}x{r.clients} explain {r.explain}: {r.error_kinds}")
    checks, ratios = targets(results)
    for explain, ratio in ratios.items():
        text = f"{ratio:.1f}x" if ratio is not None else "n/a (not run)"
        console.print(f"dualscreen ({explain.replace('_', ' ')}) vs mlflow, 64 items at 8 clients: {text}")
    for c in checks:
        colour = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}[c["verdict"]]
        value = "n/a" if c["value"] is None else f"{c['value']:.1f}"
        console.print(f"[{colour}]{c['verdict']}[/{colour}] {c['target']}: {value} (goal {c['goal']})")
    config = {k: v for k, v in vars(args).items() if k not in ("key", "json")}
    rows = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(r).items()} for r in results]
    return {"config": config, "results": rows, "mlflow_ratio": ratios, "targets": checks}


def ints(text: str) -> list[int]:
    """Parse a comma-separated list of positive integers."""
    values = [int(x) for x in text.split(",") if x.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,8,32, got {text!r}")
    return values


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--port", type=int, default=8765, help="port for the dualscreen server started here")
    p.add_argument("--mlflow-port", type=int, default=8766, help="port for `mlflow models serve`")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=2.0, help="discarded warm-up seconds per scenario")
    p.add_argument("--clients", type=ints, default=[1, 8, 32], help="concurrent clients, comma-separated")
    p.add_argument("--sizes", type=ints, default=[1, 64], help="descriptions per request, comma-separated")
    p.add_argument("--positive-share", type=float, default=0.05, help="share of positives in the request pool")
    p.add_argument("--skip-mlflow", action="store_true", help="do not benchmark `mlflow models serve`")
    p.add_argument("--workers", type=int, default=None, help="server worker processes (passed to both servers)")
    p.add_argument("--url", default=None, help="benchmark an already-running dualscreen service (needs --key)")
    p.add_argument("--key", default=None, help="API key for --url (screening role)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON to this path")
    args = p.parse_args(argv)
    if args.url and not args.key:
        p.error("--url needs --key: create one with `dualscreen keys create --role screening`")
    if not 0 <= args.positive_share <= 1:
        p.error("--positive-share must be between 0 and 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Start the servers, run the scenarios, report what ran; 1 when a server or key cannot be started."""
    args = parse(argv)
    pool = Pool(build_pool(CORPUS, args.positive_share))
    workers = ["--workers", str(args.workers)] if args.workers else []
    procs: list[subprocess.Popen[bytes]] = []
    results: list[Result] = []
    rc = 0
    with contextlib.ExitStack() as files:
        tmp = Path(files.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        try:
            url, key = args.url, args.key
            if url is None:
                key = create_key()
                url = f"http://127.0.0.1:{args.port}"
                log = files.enter_context(open(tmp / "dualscreen.err", "w+b"))
                cmd = [str(BIN / "dualscreen"), "serve", "--host", "127.0.0.1", "--port", str(args.port), *workers]
                procs.append(start(cmd, server_env(), log))
                wait_ready(procs[-1], f"{url}/readyz", 180, log, "dualscreen")
            results += asyncio.run(bench(dualscreen_target(url, key), pool, args))
            for proc in procs:  # leave the cores to mlflow
                stop(proc)
            if not args.skip_mlflow:
                ml_url = f"http://127.0.0.1:{args.mlflow_port}"
                log = files.enter_context(open(tmp / "mlflow.err", "w+b"))
                cmd = [str(BIN / "mlflow"), "models", "serve", "-m", "models:/dualscreen@champion"]
                cmd += ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(args.mlflow_port), *workers]
                procs.append(start(cmd, {**server_env(), "MLFLOW_TRACKING_URI": tracking_uri()}, log))
                wait_ready(procs[-1], f"{ml_url}/ping", 300, log, "mlflow models serve")
                results += asyncio.run(bench(mlflow_target(ml_url), pool, args))
        except ServerError as exc:
            console.print(f"[red]{exc}[/red]")
            rc = 1
        finally:  # also on Ctrl-C: no server outlives the benchmark
            for proc in procs:
                stop(proc)
    if not results:
        return rc
    summary = report(results, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=str))
        console.print(f"wrote {args.json}")
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
