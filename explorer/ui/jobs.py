"""The model work behind a lane job, run in a thread worker. Ends with exactly one JobDone
(result or error), which is what lets the lane start the next job."""

from __future__ import annotations

from explorer.backend import Cancelled
from explorer.session import Job, Synced
from explorer.ui.messages import JobDone, JobProgress
from explorer.ui.views import parse_attribution_view


def fetch_views(backend, job: Job, post=None) -> dict:
    """The arrays named in job.views, straight from the backend (which caches them)."""
    out = {}
    progress = None if post is None else (lambda done, total: post(JobProgress(job.id, done, total)))
    for name in sorted(job.views):
        if job.cancelled():
            raise Cancelled("superseded")
        if name == "influence":
            out[name] = backend.influence(job.key)
        elif name == "prompt_lens":
            out[name] = backend.prompt_layer_probs(job.key)
        elif name == "candidate_lens":
            out[name] = backend.layer_probs(job.key, job.candidates)
        elif (wanted := parse_attribution_view(name)) is not None:
            method, target, baseline = wanted
            chosen = {"baseline": baseline} if baseline else {}  # integrated gradients only
            out[name] = backend.attribution(job.key, target, method, progress=progress,
                                            cancelled=job.cancelled, **chosen)
        elif name == "logits":  # the kept raw row: p_final and sampling need no model work
            out[name] = backend.next_logits(job.key)
        elif name == "draw":  # the server's own sampler: the token it chooses (one request)
            out[name] = backend.draw(job.key, job.sampling, job.prompt_len, job.candidates)
        elif name == "tracked":
            out[name] = backend.tracked(job.key, job.tracked, cancelled=job.cancelled)
        elif name == "prompt_values":
            # Only backends whose capabilities say prompt_logprobs=False are asked (servers
            # without prompt log-probs): one request per position, cancellable.
            out[name] = backend.prompt_values(job.key, progress=progress, cancelled=job.cancelled)
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


def run_job(post, backend, job: Job) -> None:
    result, error = None, None
    try:
        if job.kind == "sync":
            for old in job.forget:
                backend.forget(old)
            records = backend.sync(
                job.key,
                job.ids,
                progress=lambda done, total: post(JobProgress(job.id, done, total)),
                cancelled=job.cancelled,
            )
            result = Synced(records, ride_along(backend, job))
        else:
            # The lane may have shown a prefix (a pop) without telling the backend: bring
            # it to the job's ids first (for a prefix a crop, no forward pass).
            backend.sync(job.key, job.ids, cancelled=job.cancelled)
            result = fetch_views(backend, job, post)
    except BaseException as exc:  # noqa: BLE001 - reported to the lane, shown by the app
        error = exc
    finally:
        post(JobDone(job.id, result, error))
