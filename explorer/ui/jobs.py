"""The model work behind a lane job, run in a thread worker. Ends with exactly one JobDone
(result or error), which is what lets the lane start the next job."""

from __future__ import annotations

from explorer.backend import Cancelled
from explorer.session import Job
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
            method, target = wanted
            out[name] = backend.attribution(job.key, target, method, progress=progress,
                                            cancelled=job.cancelled)
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


def run_job(post, backend, job: Job) -> None:
    result, error = None, None
    try:
        if job.kind == "sync":
            for old in job.forget:
                backend.forget(old)
            result = backend.sync(
                job.key,
                job.ids,
                progress=lambda done, total: post(JobProgress(job.id, done, total)),
                cancelled=job.cancelled,
            )
        else:
            result = fetch_views(backend, job, post)
    except BaseException as exc:  # noqa: BLE001 - reported to the lane, shown by the app
        error = exc
    finally:
        post(JobDone(job.id, result, error))
