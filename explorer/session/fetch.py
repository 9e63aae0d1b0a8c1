"""How each view of a lane job is fetched from the backend: a table from View to the
backend call (explorer.session.views), and the attributions by their fields. No Textual:
the app's thread workers (explorer.ui.jobs) and a headless driver
(explorer.session.headless) both run jobs through it.
"""

from __future__ import annotations

from explorer.backend import Cancelled
from explorer.session.job import Job
from explorer.session.views import AttributionView, PositionRow, View


def _attribution(backend, job: Job, view: AttributionView, progress):
    chosen = {"baseline": view.baseline} if view.baseline else {}  # integrated gradients only
    if view.position is not None:  # a past position (only then: other backends lack the word)
        chosen["position"] = view.position
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


def fetch_views(backend, job: Job, progress=None) -> dict:
    """The arrays named in job.views, straight from the backend (which caches them).
    progress(done, total): a long view's progress (an attribution, tracked tokens)."""
    out = {}
    for name in sorted(job.views, key=str):
        if job.cancelled():
            raise Cancelled("superseded")
        if isinstance(name, AttributionView):
            out[name] = _attribution(backend, job, name, progress)
        elif isinstance(name, PositionRow):
            out[name] = backend.logits_before(job.key, name.index)
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


def sync_job(backend, job: Job, progress=None):
    """A sync job's model work before any chained appends: forget removed prompts, bring
    prompt `key` to the job's ids; its records."""
    for old in job.forget:
        backend.forget(old)
    return backend.sync(job.key, job.ids, progress=progress, cancelled=job.cancelled)


def views_job(backend, job: Job, progress=None) -> dict:
    """A views job: the lane may have shown a prefix (a pop) without telling the backend,
    so bring it to the job's ids first (for a prefix a crop, no forward pass)."""
    backend.sync(job.key, job.ids, cancelled=job.cancelled)
    return fetch_views(backend, job, progress)
