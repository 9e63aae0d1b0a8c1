"""Key to screen: what a key press costs the app beyond the model's own work.

    uv run python benchmarks/key_latency.py [--reps 15] [--held 100] [--models small,default]

Drives the real app with Textual's Pilot (headless, 120x40) on the small model (the
embedded one, by name) and on config.toml's default model (when that is another model),
and times, in one run, each key from the moment it is posted (as the terminal driver
posts it) until the app is idle *and the screen has painted the result*
(timed keys come --gap seconds apart, a terminal's key-repeat interval: Textual paints at
most once a frame, so a key landing just after a paint would wait for the next frame)
(`App.wait_for_refresh`). While a model job runs the benchmark awaits it (Textual's
`wait_for_complete`); otherwise completion is polled every 0.5 ms on the app's event loop.
Beside each wall-clock figure, `*_cpu_ms` is the CPU time of the app's own thread (the
event loop: handlers, layout, painting, and the polling) over the same span: on a
loaded, shared CPU it moves much less than wall-clock time.

- append (→): key to idle over the engine's own append (`backend.sync` one token
  longer, on a prompt of its own, timed right after the app's press: interleaved);
  screen and plumbing overhead = key to idle minus the engine time, per press.
- pop (←), cursor move (↓/↑), colour-layer toggle (e: none → probability → entropy):
  no model work, so absolute milliseconds (pop beside the engine's own crop).
- held: --held presses of → posted at once (a held key) until all are on screen, over
  the sum of the engine's append steps for the same tokens (awaiting the model's job,
  polled every 5 ms between jobs); beside
  it the number of model jobs the lane started for them and the event-loop CPU per
  press. Measured twice in the same run: first with one job per press (the lane's
  `chaining` off, as before issue 13's chaining), then with the appends chained inside
  the running job's worker (the app's behaviour; `held_over_engine`).

Medians over --reps presses per key. The last line is one JSON object; its top-level
figures are the worst over the models measured, `models` holds each one.
Targets (issue 13): overhead <= 15 ms, pop/cursor/toggle <= 16 ms, held <= 1.2x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402
from textual.worker import WorkerCancelled, WorkerError, WorkerFailed, WorkerState  # noqa: E402

from explorer.backend import open_backend  # noqa: E402
from explorer.config import EMBEDDED_NAME, ModelSettings, Settings, load_settings  # noqa: E402
from explorer.ui.app import TokenExplorerApp  # noqa: E402
from explorer.ui.views import ColourLayer  # noqa: E402

SIZE = (120, 40)
POLL = 0.0005
HELD_POLL = 0.005  # the held-key run lasts seconds: 5 ms of polling error is nothing there
ROWS = 4  # append rotates over the first ROWS rows of the table
GAP = [1 / 30]  # seconds between timed keys (--gap)
BENCH_KEY = ("key-latency-bench",)


def ms(seconds: float) -> float:
    return seconds * 1e3


async def settle(app: TokenExplorerApp, pilot) -> None:
    """Wait (untimed) until start-up or earlier presses are done."""
    for _ in range(100_000):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.is_idle or app.start_failed:
            return
    raise RuntimeError("the app never settled")


CPU: list[float] = []  # event-loop CPU seconds of the last timed_key


async def wait_for_jobs(app: TokenExplorerApp) -> bool:
    """Await the app's running workers, if any (True when there were some)."""
    running = [w for w in app.workers if w.state == WorkerState.RUNNING]
    if not running:
        return False
    try:
        await app.workers.wait_for_complete(running)
    except (WorkerCancelled, WorkerError, WorkerFailed):
        pass  # a superseded or failed job: the caller's condition decides
    return True


async def timed_key(app: TokenExplorerApp, key: str, done) -> float:
    """Post `key` (as the driver does), wait until done() holds, the app is idle and the
    screen has painted; seconds from post to paint."""
    char = key if len(key) == 1 else None
    await asyncio.sleep(GAP[0])  # untimed: keys come a key-repeat interval apart
    cpu = time.thread_time()
    start = time.perf_counter()
    app.post_message(events.Key(key, char))
    while not (done() and app.is_idle):
        # While a model job runs, wait on it (its task ends when the thread does) rather
        # than wake every POLL: each wake-up takes the GIL from the model's worker, which
        # slowed the very step being timed (~1-2 ms a step on SmolLM2). A terminal does
        # not poll the app like that; the fine polling covers the rest (message, paint).
        if not await wait_for_jobs(app):
            await asyncio.sleep(POLL)
    await app.wait_for_refresh()
    elapsed = time.perf_counter() - start
    CPU[:] = [time.thread_time() - cpu]
    return elapsed


async def hold(app: TokenExplorerApp, backend, held: int) -> dict:
    """`held` presses of → posted at once; wall time until all are on screen, over the
    engine's own steps for the same tokens."""
    n = len(app.main.book.current.ids)
    jobs = app.main.lane.jobs_started
    cpu = time.thread_time()
    start = time.perf_counter()
    for _ in range(held):
        app.post_message(events.Key("right", None))
    while not (len(app.main.records) == n + held and app.is_idle):
        # Wait on a running model job rather than wake up meanwhile: each wake-up takes
        # the GIL from the model's worker (as in timed_key).
        if not await wait_for_jobs(app):
            await asyncio.sleep(HELD_POLL)
    await app.wait_for_refresh()
    wall = time.perf_counter() - start
    cpu = time.thread_time() - cpu
    jobs = app.main.lane.jobs_started - jobs
    ids = app.main.book.current.ids
    assert len(ids) == n + held
    engine = 0.0
    for k in range(n + 1, n + held + 1):
        t0 = time.perf_counter()
        backend.sync(BENCH_KEY, ids[:k])
        engine += time.perf_counter() - t0
    return {"ms": ms(wall), "engine_ms": ms(engine), "over_engine": wall / engine,
            "cpu_ms": ms(cpu / held), "jobs": jobs}


async def measure_app(settings: Settings, backend, reps: int, held: int) -> dict:
    app = TokenExplorerApp(settings, engine=backend)
    times: dict[str, list[float]] = {k: [] for k in
                                     ("append", "engine_append", "overhead", "pop", "engine_pop",
                                      "cursor", "toggle", "append_cpu", "pop_cpu",
                                      "cursor_cpu", "toggle_cpu")}
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        if app.start_failed:
            raise RuntimeError(app.start_error)
        start_ids = app.main.book.current.ids
        backend.sync(BENCH_KEY, start_ids)
        for rep in range(reps + 1):  # the first round warms caches
            # Each round appends another row's token: the same token again would be a free
            # cache hit (the engine keeps what a pop shortened until the next sync).
            row = rep % ROWS
            while app.main.table.cursor_row != row:
                app.post_message(events.Key("down" if app.main.table.cursor_row < row else "up", None))
                await settle(app, pilot)
            ids = app.main.book.current.ids
            n = len(ids)
            token = app.main.records[-1].top[row].token_id
            t_append = await timed_key(app, "right", lambda: len(app.main.records) == n + 1)
            cpu = {"append_cpu": CPU[0]}
            t0 = time.perf_counter()
            backend.sync(BENCH_KEY, ids + (token,))
            t_engine = time.perf_counter() - t0
            t_pop = await timed_key(app, "left", lambda: len(app.main.records) == n)
            cpu["pop_cpu"] = CPU[0]
            t0 = time.perf_counter()
            backend.sync(BENCH_KEY, ids)
            t_engine_pop = time.perf_counter() - t0
            cursors, cursor_cpu = [], []
            for key, to in (("down", row + 1), ("up", row)):
                cursors.append(await timed_key(app, key, lambda r=to: app.main.table.cursor_row == r))
                cursor_cpu.append(CPU[0])
            toggles, toggle_cpu = [], []
            for colour in (ColourLayer.PROBABILITY, ColourLayer.ENTROPY):
                toggles.append(await timed_key(app, "e", lambda c=colour: app.main.colour is c))
                toggle_cpu.append(CPU[0])
            # entropy -> influence -> attribution (model work, not timed here) -> none;
            # escape stops an attribution still computing.
            for _ in range(4):
                if app.main.colour is ColourLayer.NONE:
                    break
                key = "escape" if app.main.colour is ColourLayer.ATTRIBUTION and app.main.attribution is None else "e"
                app.post_message(events.Key(key, "e" if key == "e" else None))
                await pilot.pause()
            await settle(app, pilot)
            assert app.main.colour is ColourLayer.NONE, app.main.colour
            if rep == 0:
                continue
            times["append"].append(t_append)
            times["engine_append"].append(t_engine)
            times["overhead"].append(t_append - t_engine)
            times["pop"].append(t_pop)
            times["engine_pop"].append(t_engine_pop)
            times["cursor"] += cursors
            times["toggle"] += toggles
            times["append_cpu"].append(cpu["append_cpu"])
            times["pop_cpu"].append(cpu["pop_cpu"])
            times["cursor_cpu"] += cursor_cpu
            times["toggle_cpu"] += toggle_cpu

        held_runs = {}
        if held:
            # One job per press first (as before chaining), then chained: the same run.
            for label, chaining in (("unchained", False), ("chained", True)):
                app.main.lane.chaining = chaining
                held_runs[label] = await hold(app, backend, held)
            app.main.lane.chaining = True
        backend.forget(BENCH_KEY)

    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "append_ms": ms(med["append"]),
        "engine_append_ms": ms(med["engine_append"]),
        "append_over_engine": med["append"] / med["engine_append"],
        "append_screen_overhead_ms": ms(med["overhead"]),
        "pop_ms": ms(med["pop"]),
        "engine_pop_ms": ms(med["engine_pop"]),
        "cursor_ms": ms(med["cursor"]),
        "toggle_ms": ms(med["toggle"]),
        "append_cpu_ms": ms(med["append_cpu"]),
        "pop_cpu_ms": ms(med["pop_cpu"]),
        "cursor_cpu_ms": ms(med["cursor_cpu"]),
        "toggle_cpu_ms": ms(med["toggle_cpu"]),
        "held": held,
        **{f"held_{k}": v for k, v in held_runs.get("chained", {}).items()},
        **{f"held_unchained_{k}": v for k, v in held_runs.get("unchained", {}).items()},
    }


def models_to_measure(which: list[str]) -> dict[str, ModelSettings]:
    default = load_settings().model
    out = {}
    if "small" in which:
        out["small"] = replace(default, name=EMBEDDED_NAME)
    if "default" in which:
        if default.name == EMBEDDED_NAME and "small" in out:
            print("config.toml's default model is the small (embedded) model: measured once.")
        else:
            out["default"] = default
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--held", type=int, default=100)
    parser.add_argument("--models", default="small,default")
    parser.add_argument("--gap", type=float, default=GAP[0],
                        help="seconds between timed keys (a terminal's key repeat: ~1/30)")
    args = parser.parse_args()
    GAP[0] = args.gap

    results = {}
    for label, model in models_to_measure(args.models.split(",")).items():
        settings = replace(load_settings(), model=model)
        backend = open_backend(settings)
        print(f"{label}: {model.name} ({backend.info.n_layers} layers, vocab {backend.info.vocab_size}, "
              f"{backend.info.device})", flush=True)
        r = asyncio.run(measure_app(settings, backend, args.reps, args.held))
        backend.close()
        results[f"{label}:{model.name}"] = {k: round(v, 2) if isinstance(v, float) else v
                                            for k, v in r.items()}
        print(f"  append     {r['append_ms']:7.1f} ms key to idle, engine {r['engine_append_ms']:6.1f} ms"
              f" = {r['append_over_engine']:.2f}x; screen and plumbing {r['append_screen_overhead_ms']:.1f} ms")
        print(f"  pop        {r['pop_ms']:7.1f} ms (engine crop {r['engine_pop_ms']:.2f} ms)")
        print(f"  cursor     {r['cursor_ms']:7.1f} ms")
        print(f"  toggle     {r['toggle_ms']:7.1f} ms")
        print("  event-loop CPU per key: " + ", ".join(
            f"{k} {r[k + '_cpu_ms']:.1f} ms" for k in ("append", "pop", "cursor", "toggle")))
        for label in ("unchained", "chained") if args.held else ():
            key = "held_" if label == "chained" else "held_unchained_"
            print(f"  held x{args.held:<4} {label:9s} {r[key + 'ms']:7.0f} ms, engine {r[key + 'engine_ms']:.0f} ms"
                  f" = {r[key + 'over_engine']:.2f}x; {r[key + 'jobs']} model jobs, event-loop CPU"
                  f" {r[key + 'cpu_ms']:.1f} ms a press (polling included)", flush=True)

    worst = {key: max(r[key] for r in results.values())
             for key in ("append_screen_overhead_ms", "pop_ms", "cursor_ms", "toggle_ms",
                         "held_over_engine")}
    load = os.getloadavg()[0]
    print(json.dumps({**worst, "load_avg_1m": round(load, 2), "cpus": os.cpu_count(),
                      "models": results}))


if __name__ == "__main__":
    main()
