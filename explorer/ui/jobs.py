"""The model work behind a lane job, run in a thread worker. Ends with exactly one JobDone
(result or error), which is what lets the lane start the next job."""

from __future__ import annotations

from textual.worker import get_current_worker

from explorer.backend import Cancelled
from explorer.session import Job, Synced
from explorer.session.chain import run_chain
from explorer.ui.messages import ChainProgress, JobDone, JobProgress

from explorer.session.views import AttributionView, JobKind, View

# A chain of held-key appends reports its newest state this often. Each report is a draw
# (~10 ms of the event loop, which the model's worker then waits for: the GIL, and two
# cores shared with torch's two threads). Every 50 ms cost ~14 ms of event-loop CPU per
# SmolLM2 token; every 100 ms ~10 ms; every 150 ms the held key keeps within 1.2x of the
# engine's steps (benchmarks/key_latency.py) and the tokens still appear ~7 times a second.
CHAIN_REPORT_S = 0.15


def _attribution(backend, job: Job, view: AttributionView, progress):
    chosen = {"baseline": view.baseline} if view.baseline else {}  # integrated gradients only
    return backend.attribution(job.key, view.target, view.method, progress=progress,
                               cancelled=job.cancelled, **chosen)


# How each view is fetched: (backend, job, progress) -> its value.
FETCH = {
    View.INFLUENCE: lambda backend, job, progress: backend.influence(job.key),
    View.PROMPT_LENS: lambda backend, job, progress: backend.prompt_layer_probs(job.key),
    View.CANDIDATE_LENS: lambda backend, job, progress: backend.layer_probs(job.key, job.candidates),
    # The kept raw row: p_final and sampling need no model work.
    View.LOGITS: lambda backend, job, progress: backend.next_logits(job.key),
    # The server's own sampler: the token it chooses (one request); tracked tokens too:
    # their p_final, asked for by id when the server lists fewer.
    View.DRAW: lambda backend, job, progress: backend.draw(job.key, job.sampling, job.prompt_len,
                                                           job.candidates + job.tracked),
    View.TRACKED: lambda backend, job, progress: backend.tracked(job.key, job.tracked, progress=progress,
                                                                 cancelled=job.cancelled),
    # Only backends whose capabilities say prompt_logprobs=False are asked (servers
    # without prompt log-probs): one request per position, cancellable.
    View.PROMPT_VALUES: lambda backend, job, progress: backend.prompt_values(job.key, progress=progress,
                                                                             cancelled=job.cancelled),
}


def fetch_views(backend, job: Job, post=None) -> dict:
    """The arrays named in job.views, straight from the backend (which caches them)."""
    out = {}
    progress = None if post is None else (lambda done, total: post(JobProgress(job.id, done, total)))
    for name in sorted(job.views, key=str):
        if job.cancelled():
            raise Cancelled("superseded")
        if isinstance(name, AttributionView):
            out[name] = _attribution(backend, job, name, progress)
        else:
            out[name] = FETCH[View(name)](backend, job, progress)
    return out


def ride_along(backend, job: Job) -> dict:
    """The views a sync job fetches with its records (no model work). One that fails is
    left out: the lane then asks for it in a views job, which reports the error."""
    try:
        return fetch_views(backend, job)
    except Cancelled:
        raise
    except Exception:  # noqa: BLE001 - reported by the views job that follows
        return {}


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
    try:
        if job.kind is JobKind.SYNC:
            for old in job.forget:
                backend.forget(old)
            ids = job.ids  # (the lane moves job.ids on as chained tokens arrive)
            records = backend.sync(
                job.key,
                ids,
                progress=lambda done, total: post(JobProgress(job.id, done, total)),
                cancelled=job.cancelled,
            )
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
            # The lane may have shown a prefix (a pop) without telling the backend: bring
            # it to the job's ids first (for a prefix a crop, no forward pass).
            backend.sync(job.key, job.ids, cancelled=job.cancelled)
            result = fetch_views(backend, job, post)
    except BaseException as exc:  # noqa: BLE001 - reported to the lane, shown by the app
        error = exc
    finally:
        post(JobDone(job.id, result, error))
