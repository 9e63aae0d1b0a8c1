"""Views and jobs are typed and dispatched by tables: every View has a fetcher, an
attribution is its fields (never a string parsed back), and every book press has an
action. Checked with session.fetch.fetch_views on a fake backend that records each call."""

from __future__ import annotations


from explorer.session import Job
from explorer.session.presses import BOOK_ACTIONS, BOOK_PRESSES
from explorer.session.views import AttributionView, JobKind, View, is_background
from explorer.session.fetch import FETCH, fetch_views


class Recorder:
    """Answers every view call with (method name, its arguments)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: (name, args, tuple(sorted(kwargs)))


def test_every_view_has_a_fetcher_and_every_book_press_an_action():
    assert set(FETCH) == set(View)
    assert set(BOOK_ACTIONS) == BOOK_PRESSES


def test_views_are_fetched_by_type():
    ig = AttributionView.of("integrated_gradients", 7, "mean")
    saliency = AttributionView.of("saliency", 7, "mean")  # no baseline: not integrated gradients
    assert (ig.method, ig.target, ig.baseline) == ("integrated_gradients", 7, "mean")
    assert saliency.baseline is None and saliency != ig and is_background(ig) and not is_background(View.DRAW)
    job = Job(1, JobKind.VIEWS, key=3, ids=(1, 2), views=frozenset({View.INFLUENCE, ig, saliency, View.LOGITS}),
              candidates=(5,))
    out = fetch_views(Recorder(), job)
    assert out[View.INFLUENCE] == ("influence", (3,), ())
    assert out["logits"] == ("next_logits", (3,), ())  # a str enum: the plain name is the same key
    assert out[ig] == ("attribution", (3, 7, "integrated_gradients"), ("baseline", "cancelled", "progress"))
    assert out[saliency] == ("attribution", (3, 7, "saliency"), ("cancelled", "progress"))
    assert str(ig) == "attribution:integrated_gradients:7:mean" and job.kind == "views"
