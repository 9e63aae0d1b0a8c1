"""The two comparison screens. Textual only: the numbers come from the explorer core
(Explorer.comparisons, over explorer.compare), computed in a thread worker.

BranchScreen (`v`): the shown prompt against another prompt of the book (its parent fork
first; `tab` takes the next one): where they split, each side's tokens after the split on
their probability colour with an entropy strip beneath, total log-prob and mean surprisal.

ModelScreen (`V`, with a model B loaded): the prompt on a KL(A‖B) colour layer, the next
tokens with both models' probabilities, and the positions ranked by divergence; `enter`
on one marks it in the prompt and shows its numbers; `p` goes back to the main screen
with the position cursor on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from explorer.backend.token_text import make_visible
from explorer.ui.colors import ENTROPY, KL, PROBABILITY

RANKED = 30  # positions listed by divergence


@dataclass
class Compared(Message):
    result: object | None
    error: str | None = None


def _p(lp: float | None) -> str:
    return "—" if lp is None or not math.isfinite(lp) else f"{math.exp(lp):.4f}"


class _CompareScreen(Screen[None]):
    """A worker that calls compute() and draws its result (or its one sentence)."""

    BINDINGS = [Binding("escape,q", "back", "Back", id="compare.back")]

    def __init__(self, core) -> None:
        super().__init__()
        self.core = core
        self.result = None  # the last comparison drawn (public: tests read it)
        self.error: str | None = None

    @property
    def computing(self) -> bool:
        return self.result is None and self.error is None

    def action_back(self) -> None:
        self.dismiss(None)

    def refresh_comparison(self) -> None:
        self.result, self.error = None, None
        self.query_one("#compare-status", Static).update(Text("computing…", style="italic"))
        self._run()

    @work(thread=True, exit_on_error=False, group="compare", exclusive=True)
    def _run(self) -> None:
        try:
            self.post_message(Compared(self.compute()))
        except Exception as exc:  # noqa: BLE001 - one sentence on screen, never "computing" for good
            self.post_message(Compared(None, str(exc) or type(exc).__name__))

    def on_compared(self, message: Compared) -> None:
        self.result, self.error = message.result, message.error
        status = self.query_one("#compare-status", Static)
        if message.error is not None:
            status.update(Text(message.error, style="bold red"))
            return
        status.update("")
        self.draw(message.result)

    def compute(self):
        raise NotImplementedError

    def draw(self, result) -> None:
        raise NotImplementedError


class BranchScreen(_CompareScreen):
    BINDINGS = _CompareScreen.BINDINGS + [Binding("tab", "other", "Other prompt", id="compare.other")]

    def __init__(self, core) -> None:
        super().__init__(core)
        self._others = core.comparisons.others()
        self._index = 0

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        yield Static(id="compare-a", classes="compare-side")
        yield Static(id="compare-b", classes="compare-side")
        yield Static(id="compare-status")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_comparison()

    def action_other(self) -> None:
        if len(self._others) > 1:
            self._index = (self._index + 1) % len(self._others)
            self.refresh_comparison()

    def compute(self):
        other = self._others[self._index] if self._others else None
        return self.core.comparisons.branches(other)

    def _number(self, key) -> int:
        return next((i + 1 for i, p in enumerate(self.core.book) if p.key == key), 0)

    def draw(self, got) -> None:
        self.query_one("#compare-title", Static).update(Text.assemble(
            ("branches", "bold"), f" · prompt {self._number(got.a.key)} (shown, A) against prompt "
            f"{self._number(got.b.key)} (B) · they share {got.split} tokens · tab: another prompt"))
        ln_v = math.log(self.core.backend.info.vocab_size)
        for name, side in (("a", got.a), ("b", got.b)):
            self.query_one(f"#compare-{name}", Static).update(self._side(name, side, got, ln_v))

    def _side(self, name: str, side, got, ln_v: float) -> Text:
        text = Text()
        mean = side.mean_surprisal
        text.append(f"{name.upper()}: {side.after} token{'' if side.after == 1 else 's'} after the split",
                    style="bold")
        if mean is None:
            text.append(" · nothing after the split\n")
        else:
            text.append(f" · total log-prob {side.total_logprob:.3f} · mean surprisal {mean:.3f} "
                        f"nats/token")
            text.append("  ◀ the model prefers this path\n" if got.preferred == name else "\n",
                        style="bold green")
        tail = side.texts[max(0, side.split - 6):side.split]
        text.append(("…" if side.split > 6 else "") + "".join(make_visible(t) for t in tail), style="dim")
        strip = Text(" " * len(text.plain.split("\n")[-1]))
        for i in range(side.split, len(side.ids)):
            lp, h = side.logprobs[i], side.entropies[i]
            token = make_visible(side.texts[i])
            text.append(token, style=PROBABILITY.style(None if lp is None else math.exp(lp)))
            strip.append("▆" * len(token), style=ENTROPY.swatch(None if h is None else h / ln_v))
        text.append("\n")
        text.append_text(strip)
        surest = side.surest
        if surest is not None:
            mark = " (a lower bound)" if side.entropy_bound else ""
            text.append(f"\nentropy beneath each token (light = sure); surest at position {surest}: "
                        f"{side.entropies[surest]:.3f} nats{mark}", style="dim")
        return text


class ModelScreen(_CompareScreen):
    DEFAULT_CSS = """
    ModelScreen #compare-panes { height: 1fr; }
    ModelScreen #compare-table { width: 1fr; height: 1fr; }
    ModelScreen #compare-ranked { width: 1fr; height: 1fr; }
    ModelScreen #compare-prompt { max-height: 12; overflow-y: auto; }
    """
    BINDINGS = _CompareScreen.BINDINGS + [
        Binding("enter", "jump", "Mark position", id="compare.jump", priority=True),
        # The main screen's position cursor there: the table shows the distribution before it.
        Binding("p", "go_to_position", "Go to position", id="compare.position"),
    ]

    def __init__(self, core) -> None:
        super().__init__(core)
        self.marked: int | None = None  # the position `enter` marked

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        yield Static(id="compare-prompt")
        yield Static(id="compare-detail")
        with Horizontal(id="compare-panes"):
            yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
            yield OptionList(id="compare-ranked")
        yield Static(id="compare-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("next token", "p_A", "p_B", "id")
        self.query_one(OptionList).focus()
        self.refresh_comparison()

    def compute(self):
        return self.core.comparisons.models()

    def _kl(self, cmp, value: float) -> str:
        return f"{'≥' if cmp.kl_bound else ''}{value:.4g}"

    def draw(self, cmp) -> None:
        s = cmp.summary()
        title = Text.assemble(("models", "bold"), f" · A {cmp.name_a} ({cmp.dtype_a}) · B {cmp.name_b} "
                              f"({cmp.dtype_b}) · KL(A‖B) {'lower bound (a server: top-K only)' if cmp.kl_bound else 'exact'}")
        if s["positions"]:
            title.append(f"\nmean KL {self._kl(cmp, s['mean_kl'])} · max {self._kl(cmp, s['max_kl'])} at "
                         f"position {s['max_kl_position']} · top-1 agree {s['top1_agree']}/{s['positions']}")
        self.query_one("#compare-title", Static).update(title)
        self._draw_prompt(cmp)
        table = self.query_one(DataTable)
        table.clear()
        top, _ = self.core.table_candidates()
        for c in top:
            table.add_row(make_visible(c.text), f"{c.prob:.4f}", _p(_lookup(cmp.next_b, c.token_id)), str(c.token_id))
        ranked = self.query_one(OptionList)
        ranked.clear_options()
        for p in cmp.ranked()[:RANKED]:
            label = (f"{p.position:>5} {make_visible(p.token)[:12]:<13}KL {self._kl(cmp, p.kl_ab):>10} "
                     f"Δ {p.delta:+.3f}" + ("" if p.top1_a == p.top1_b else "  top-1 differs"))
            ranked.add_option(Option(label, id=str(p.position)))
        if ranked.option_count:
            ranked.highlighted = 0

    def _draw_prompt(self, cmp) -> None:
        worst = max((p.kl_ab for p in cmp.scored()), default=0.0) or 1.0
        text = Text()
        for p in cmp.positions:
            style = KL.style(None if p.kl_ab is None else p.kl_ab / worst)
            if p.position == self.marked:
                style = style + Style(reverse=True, bold=True, underline=True)
            text.append(make_visible(p.token), style=style)
        text.append(f"\ncolour: KL(A‖B) from 0 (light) to the prompt's max {self._kl(cmp, worst)} (dark)"
                    " · right: positions by divergence, enter marks one", style="dim")
        self.query_one("#compare-prompt", Static).update(text)

    def action_jump(self) -> None:
        ranked = self.query_one(OptionList)
        if self.result is None or ranked.highlighted is None:
            return
        self.marked = int(ranked.get_option_at_index(ranked.highlighted).id)
        p = self.result.positions[self.marked]
        self.query_one("#compare-detail", Static).update(Text(
            f"position {p.position} {make_visible(p.token)!r}: KL {self._kl(self.result, p.kl_ab)} · "
            f"ln p_A {p.logprob_a:.4f} · ln p_B {p.logprob_b:.4f} · top-1 A "
            f"{make_visible(self.core.backend.token_text(p.top1_a))!r}, B "
            f"{make_visible(self.core.backend.token_text(p.top1_b))!r}"))
        self._draw_prompt(self.result)

    def action_go_to_position(self) -> None:
        """Back to the main screen with its position cursor on the marked position (or the
        highlighted one)."""
        if self.marked is None:
            self.action_jump()
        if self.marked is not None:
            self.core.cursor.put(self.marked)
            self.dismiss(self.marked)

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_jump()


def _lookup(row, token_id: int) -> float | None:
    """ln p of a token from B's row after the last position (a full row or a server's top-K)."""
    if row is None:
        return None
    if isinstance(row, dict):
        return row.get(token_id)
    return float(row[token_id])
