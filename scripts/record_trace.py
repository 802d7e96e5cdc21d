"""Record a hot-tier access trace from real browser sessions of the real app.

    .venv/bin/python scripts/record_trace.py --users 8 --minutes 20 --seed 1 --name dashboard-8u

What it does, in order:
1. Fills a fresh data dir: the bundled real history plus SYNTHETIC bars (seeded random
   walks from benchmarks/bench_store.gen_bars, venue "synthetic") for `--symbols` symbols
   x `--days` days of 1-minute bars, written with MarketStore.
2. Creates one analyst account per user with the lakehouse API (in a subprocess).
3. Starts `streamlit run app.py` on a free loopback port with HFT_ACCESS_TRACE set (and
   the simulated demo venue on, so live bars are written while the users browse).
4. Drives `--users` concurrent Chromium contexts (Playwright, /usr/bin/chromium) that behave
   like researchers: each signs in, opens pages that read bars (Regimes, Chiarella lab,
   Mean reversion) and others (Home, Data, SQL Explorer, Live Market), picks markets from
   a personal watch list or by skewed (Zipf) popularity, goes back to earlier views, and
   stays on pages while the live fragments refresh.
5. Stops the app, adds a provenance record (knobs, date, data size on disk and in memory)
   and writes the trace to benchmarks/traces/<name>.jsonl.gz.

Every read the hot tier sees is recorded by core.data.trace inside the app process (the
pages read through the store with no cache of their own). The first read of each distinct
key misses in any cache, so a short recording caps the hit rate; 20 minutes of 8 users
makes about 1,600 reads of 40-odd keys.
Replay: `.venv/bin/python -m benchmarks store` (or `hfthot trace replay <file>`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
# page url path -> share of page visits
PAGE_MIX = {
    "regimes": 0.28,
    "chiarella_lab": 0.16,
    "mean_reversion": 0.16,
    "live_market": 0.14,
    "home": 0.10,
    "data": 0.08,
    "sql_explorer": 0.08,
}
# pages with a market picker: (widget test id, label)
PICKERS = {
    "regimes": ("stSelectbox", "Market"),
    "chiarella_lab": ("stSelectbox", "Market"),
    "mean_reversion": ("stMultiSelect", "Markets"),
}
TITLES = {
    "regimes": "Regimes",
    "chiarella_lab": "Chiarella lab",
    "mean_reversion": "Mean reversion",
    "live_market": "Live Market",
    "home": "Home",
    "data": "Data",
    "sql_explorer": "SQL Explorer",
}


# ------------------------------------------------------------------ data
def populate(data_dir: Path, symbols: int, days: int) -> list[str]:
    """Bundled history + synthetic bars; returns the picker labels of the stored series."""
    from benchmarks.bench_store import gen_bars
    from core.config import Settings
    from core.data.store import MarketStore, import_bundled

    settings = Settings.from_env({"HFT_DATA_DIR": str(data_dir)})
    store = MarketStore(settings.market_dir)
    try:
        import_bundled(store)
        for i in range(symbols):
            store.write_bars(gen_bars(i, days))
        labels = [f"{k.symbol} · {k.venue} · {k.timeframe}" for k in store.series("bars")]
    finally:
        store.close()
    return labels


def data_facts(data_dir: Path) -> dict[str, Any]:
    """Size of the bars data after the run: on disk (warm tier) and in memory (every series
    read whole at its stored timeframe, as the hot tier would weigh it)."""
    from core.config import Settings
    from core.data.hot import frame_bytes
    from core.data.store import MarketStore

    settings = Settings.from_env({"HFT_DATA_DIR": str(data_dir)})
    store = MarketStore(settings.market_dir, hot_bytes=1)
    try:
        keys = store.series("bars")
        memory = rows = 0
        for k in keys:
            frame = store.get_bars(k.symbol, timeframe=k.timeframe, venue=k.venue, cache=False)
            memory += frame_bytes(frame)
            rows += frame.height
        disk = sum(f.size for key, f in store.warm_files("bars"))
    finally:
        store.close()
    return {"series": len(keys), "rows": rows, "memory_bytes": memory, "disk_bytes": disk}


def make_accounts(data_dir: Path, users: list[tuple[str, str]]) -> None:
    """Analyst accounts, created in a subprocess (no Delta handles live in this one)."""
    done = subprocess.run(  # noqa: S603 (this interpreter running this script)
        [sys.executable, __file__, "--make-accounts", str(data_dir)],
        input=json.dumps(users),
        text=True,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"creating accounts failed:\n{done.stdout}\n{done.stderr}")


def _make_accounts_main(data_dir: Path) -> int:
    from core.config import Settings
    from lakehouse import Argon2Params, LakehouseAuthBackend

    users: list[list[str]] = json.load(sys.stdin)
    s = Settings.from_env({"HFT_DATA_DIR": str(data_dir)})
    backend = LakehouseAuthBackend(
        s.lakehouse_dir,
        secrets_dir=s.secrets_dir,
        argon2_params=Argon2Params.fast_for_tests(),
        allow_weak_hashing_for_tests=True,
    )
    for username, password in users:
        backend.register(username, f"{username}@example.test", password)
        backend.set_role_as_operator(username, "analyst")
    backend.flush()
    return 0


# ---------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class App:
    def __init__(self, data_dir: Path, trace: Path, log: Path, hot_mb: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "HFT_DATA_DIR": str(data_dir),
            "HFT_ACCESS_TRACE": str(trace),
            "HFT_DEMO_VENUE": "true",
            "HFT_HOT_CACHE_MB": str(hot_mb),
        }
        self._log = log.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 (this interpreter running streamlit)
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless=true",
                "--server.address=127.0.0.1",
                f"--server.port={self.port}",
                "--browser.gatherUsageStats=false",
                "--server.fileWatcherType=none",  # others edit the checkout meanwhile
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early, see {log}")
            try:
                health = f"{self.url}/_stcore/health"  # always http://127.0.0.1
                with urllib.request.urlopen(health, timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"streamlit not healthy after 90 s, see {log}")

    def stop(self) -> str:
        """Stop the app; how it ended (the recorder's closing record needs a clean exit)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
            how = f"exit {self.proc.returncode} after SIGTERM"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            how = "killed 30 s after SIGTERM"
        self._log.close()
        return how


# ------------------------------------------------------------ researchers
@dataclass
class Researcher:
    name: str
    password: str
    rng: np.random.Generator
    watch: list[str]
    history: list[tuple[str, str | None]] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)


async def wait_idle(page: Any, timeout_ms: int = 60_000) -> None:
    await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms
    )


async def sign_in(page: Any, url: str, user: Researcher) -> None:
    await page.goto(url)
    await wait_idle(page)
    await page.get_by_label("Username", exact=True).fill(user.name)
    await page.get_by_label("Password", exact=True).fill(user.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    for _ in range(600):
        if any(c["name"] == "hfthot_session" for c in await page.context.cookies()):
            break
        await page.wait_for_timeout(100)
    await wait_idle(page)


async def open_page(page: Any, url: str, path: str) -> None:
    """Click the page in the sidebar (same session), or load its URL."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=TITLES[path], exact=True)
    if await link.count():
        await link.first.click()
    else:
        await page.goto(f"{url}/{path}")
    # Home is the default page: its URL is the bare app URL.
    target = re.compile(rf"{re.escape(url)}/?(home)?/?(\?.*)?$") if path == "home" else f"**/{path}"
    await page.wait_for_url(target, timeout=30_000)
    await wait_idle(page)


async def pick(page: Any, path: str, label: str) -> bool:
    """Choose `label` in the page's market picker; False if it is not offered."""
    test_id, name = PICKERS[path]
    box = page.get_by_test_id(test_id).filter(has_text=name).first
    await box.click()
    await page.keyboard.type(label.split(" · ")[0])
    option = page.get_by_role("option", name=label, exact=True)
    try:
        await option.first.click(timeout=5_000)
    except Exception:
        await page.keyboard.press("Escape")
        return False
    if test_id == "stMultiSelect":
        await page.keyboard.press("Escape")
    await wait_idle(page, 120_000)
    return True


def choose(user: Researcher, popular: list[str], weights: np.ndarray) -> tuple[str, str | None]:
    """Next view: back to an earlier one, or a page and a market (watch list or popular)."""
    rng = user.rng
    if user.history and rng.random() < 0.2:
        back = int(min(len(user.history), 1 + rng.geometric(0.4)))
        return user.history[-back]
    path = str(rng.choice(list(PAGE_MIX), p=list(PAGE_MIX.values())))
    if path not in PICKERS:
        return path, None
    if rng.random() < 0.6:
        return path, str(rng.choice(user.watch))
    return path, popular[int(rng.choice(len(popular), p=weights))]


async def browse(
    browser: Any, url: str, user: Researcher, popular: list[str], weights: np.ndarray, end: float
) -> None:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(60_000)
    try:
        await sign_in(page, url, user)
        user.actions["sign-in"] += 1
        while time.monotonic() < end:
            path, label = choose(user, popular, weights)
            try:
                await open_page(page, url, path)
                user.actions[path] += 1
                if label is not None:
                    user.actions["pick" if await pick(page, path, label) else "pick-missing"] += 1
                user.history.append((path, label))
            except Exception as exc:
                user.actions[f"error {path}: {type(exc).__name__}"] += 1
            # Read the screen; the live fragments keep refreshing meanwhile.
            await page.wait_for_timeout(int(1000 * user.rng.uniform(2.0, 10.0)))
    finally:
        await ctx.close()


async def drive(url: str, users: list[Researcher], popular: list[str], minutes: float) -> None:
    from playwright.async_api import async_playwright

    zipf = 1.0 / np.arange(1, len(popular) + 1) ** 1.1
    weights = zipf / zipf.sum()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        end = time.monotonic() + 60 * minutes
        try:
            tasks = []
            for k, user in enumerate(users):
                tasks.append(asyncio.create_task(browse(browser, url, user, popular, weights, end)))
                await asyncio.sleep(2.0 + k * 0.5)  # people do not all arrive at once
            await asyncio.gather(*tasks)
        finally:
            await browser.close()


# ------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=8, help="concurrent browser sessions")
    ap.add_argument("--minutes", type=float, default=20.0, help="browsing time")
    ap.add_argument("--seed", type=int, default=1, help="seeds popularity and behaviour")
    ap.add_argument("--symbols", type=int, default=50, help="synthetic symbols")
    ap.add_argument("--days", type=int, default=90, help="days of synthetic 1m bars each")
    ap.add_argument("--app-cache-mb", type=int, default=256, help="the app's HFT_HOT_CACHE_MB")
    ap.add_argument("--name", default="dashboard", help="benchmarks/traces/<name>.jsonl.gz")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "traces")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (data, app log)")
    ap.add_argument("--make-accounts", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_accounts is not None:
        return _make_accounts_main(args.make_accounts)
    if min(args.users, args.days, args.app_cache_mb) < 1 or args.minutes <= 0 or args.symbols < 0:
        ap.error("--users, --minutes, --days and --app-cache-mb must be positive")

    work = Path(tempfile.mkdtemp(prefix="record-trace-"))
    data_dir, raw = work / "data", work / "raw-trace.jsonl"
    try:
        t0 = time.monotonic()
        labels = populate(data_dir, args.symbols, args.days)
        print(f"data: {len(labels)} series in {time.monotonic() - t0:.0f} s", flush=True)
        rng = np.random.default_rng(args.seed)
        popular = [labels[int(i)] for i in rng.permutation(len(labels))]
        zipf = 1.0 / np.arange(1, len(popular) + 1) ** 1.1
        zipf /= zipf.sum()
        creds = [(f"researcher-{k + 1:02d}", secrets.token_urlsafe(16)) for k in range(args.users)]
        make_accounts(data_dir, creds)
        users = [
            Researcher(
                name,
                pw,
                np.random.default_rng([args.seed, k]),
                [popular[int(i)] for i in rng.choice(len(popular), 5, replace=False, p=zipf)],
            )
            for k, (name, pw) in enumerate(creds)
        ]
        app = App(data_dir, raw, work / "streamlit.log", args.app_cache_mb)
        started = dt.datetime.now(dt.UTC)
        try:
            print(f"app at {app.url}; {args.users} users for {args.minutes:g} min", flush=True)
            asyncio.run(drive(app.url, users, popular, args.minutes))
        finally:
            stopped = app.stop()
        print(f"app stopped: {stopped}", flush=True)
        actions: Counter[str] = Counter()
        for u in users:
            actions.update(u.actions)
        print(f"actions: {dict(actions)}", flush=True)
        from core.data.trace import read_key

        records = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
        reads = [r for r in records if r["op"] == "r"]
        facts = data_facts(data_dir)
        meta = {
            "op": "meta",
            "recorded": started.isoformat(timespec="seconds"),
            "by": "scripts/record_trace.py",
            "knobs": {
                "users": args.users,
                "minutes": args.minutes,
                "seed": args.seed,
                "symbols": args.symbols,
                "days": args.days,
                "app_cache_mb": args.app_cache_mb,
            },
            "commit": _commit(),
            "data": {**facts, "note": "bundled real history + SYNTHETIC random walks + demo"},
            "reads": len(reads),
            "distinct": len({read_key(r) for r in reads}),
            "writes": sum(1 for r in records if r["op"] == "w"),
            "actions": dict(actions),
        }
        args.out.mkdir(parents=True, exist_ok=True)
        dest = args.out / f"{args.name}.jsonl.gz"
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in [meta, *records])
        dest.write_bytes(gzip.compress(body.encode(), mtime=0))
        print(
            f"wrote {dest} ({dest.stat().st_size / 1024:.0f} KiB): {meta['reads']} reads, "
            f"{meta['distinct']} distinct, {meta['writes']} writes",
            flush=True,
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git from PATH)
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
