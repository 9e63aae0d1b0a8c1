"""The model work behind a lane job, run in a thread worker. Ends with exactly one JobDone
(result or error), which is what lets the lane start the next job."""

from __future__ import annotations

from textual.worker import get_current_worker

from explorer.backend import Cancelled
from explorer.session import Job, Synced
from explorer.session.chain import run_chain
from explorer.ui.messages import ChainProgress, JobDone, JobProgress

from explorer.session.fetch import ride_along, sync_job, views_job
from explorer.session.views import JobKind

# A chain of held-key appends reports its newest state this often. Each report is a draw
# (~10 ms of the event loop, which the model's worker then waits for: the GIL, and two
# cores shared with torch's two threads). Every 50 ms cost ~14 ms of event-loop CPU per
# SmolLM2 token; every 100 ms ~10 ms; every 150 ms the held key keeps within 1.2x of the
# engine's steps (benchmarks/key_latency.py) and the tokens still appear ~7 times a second.
CHAIN_REPORT_S = 0.15


def chain_appends(post, backend, job: Job, ids, records):
    """Append the presses the lane hands to this job's chain, one decode step each, with
    no round trip through the event loop between them (explorer.session.chain). Stops
    when the chain is empty, the job is cancelled or the app shuts its workers down.
    A step that fails: the tokens before it still reach the lane, then the error does."""
    worker = get_current_worker()
    reached = [ids, records]

    def step(longer):
        out = backend.sync(job.key, longer, cancelled=job.cancelled)
        reached[:] = [longer, out]
        return out

    def report(at, recs):
        post(ChainProgress(job.id, at, recs, ride_along(backend, job)))

    try:
        return run_chain(job.chain, ids, records, step, report,
                         stopped=lambda: job.cancelled() or worker.is_cancelled,
                         every=CHAIN_REPORT_S)
    except BaseException:
        if len(reached[0]) > len(ids):
            post(ChainProgress(job.id, reached[0], reached[1], {}))
        raise


def run_job(post, backend, job: Job) -> None:
    result, error = None, None
    progress = lambda done, total: post(JobProgress(job.id, done, total))  # noqa: E731
    try:
        if job.kind is JobKind.SYNC:
            ids = job.ids  # (the lane moves job.ids on as chained tokens arrive)
            records = sync_job(backend, job, progress)
            chained = False
            if job.chain is not None:
                ids, records = chain_appends(post, backend, job, ids, records)
                chained = ids != job.ids
            try:
                views = ride_along(backend, job)
            except Cancelled:
                if not chained:
                    raise
                views = {}  # cancelled after chained tokens: they still reach the lane
            result = Synced(records, views, ids)
        else:
            result = views_job(backend, job, progress)
    except BaseException as exc:  # noqa: BLE001 - reported to the lane, shown by the app
        error = exc
    finally:
        post(JobDone(job.id, result, error))
