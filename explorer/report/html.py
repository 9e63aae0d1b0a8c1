"""One self-contained HTML file from a Report (explorer.report.data): styles, script, data
and plots inline, nothing fetched (no network, no CDN), so it opens in any browser from
disk or as a mail attachment.

The prompt is drawn as the app draws it (explorer.display: whitespace and special tokens
visible, byte tokens grouped into their character), each segment coloured by the chosen
layer with a legend. Hovering or tapping a token fills the tooltip (#tip) with its
probability, rank, entropy and the candidates that predicted it (p_base, p_final). The
curves are inline SVG (explorer.report.svg); a token tree is nested <details>.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from explorer.atomic import write_text_atomic
from explorer.display.colors import NEUTRAL
from explorer.report.data import LAYERS, NO_LAYER, Report, hex_rgb
from explorer.report.svg import line_plot

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:60em;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.3em;margin:0 0 .4em} h2{font-size:1.1em;margin:1.4em 0 .4em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;margin:0;font-size:.92em}
dl.facts dt{color:#666} dl.facts dd{margin:0;font-family:ui-monospace,monospace}
#prompt{font-family:ui-monospace,monospace;line-height:2;white-space:pre-wrap;word-break:break-all;
 border:1px solid #ccc;padding:.5em;border-radius:4px}
.tok{padding:1px 0;margin-right:1px;border-radius:2px;cursor:pointer;outline:1px solid rgba(0,0,0,.12)}
.tok:hover,.tok.on{outline:2px solid #000}
.tok.special{font-style:italic;font-weight:bold;outline-style:dashed}
.tok.o-sampled,.tok.o-picked{font-weight:bold} .tok.o-forced{font-style:italic}
.tok.group{text-decoration:underline} .tok.partial{opacity:.75;text-decoration:underline wavy}
.legend{display:flex;align-items:center;gap:.5em;margin:.5em 0;font-size:.9em}
.legend .bar{width:12em;height:.9em;border:1px solid #999}
.legend .none{display:inline-block;width:1em;height:.9em;border:1px solid #999}
#tip{position:fixed;z-index:9;background:#fff;border:1px solid #888;border-radius:4px;padding:.4em .6em;
 box-shadow:0 2px 8px rgba(0,0,0,.25);font-size:13px;max-width:28em;display:none}
#tip table{border-collapse:collapse} #tip td{padding:0 .5em 0 0;font-family:ui-monospace,monospace}
#tip .head{font-weight:bold;margin-bottom:.2em} #tip .chosen td{font-weight:bold}
table.cands td,table.cands th{padding:0 .8em 0 0;text-align:left;font-family:ui-monospace,monospace}
figure{margin:.5em 0} figcaption{font-size:.92em;color:#444}
figcaption .key{margin-left:1em} figcaption .key i{display:inline-block;width:.9em;height:.9em;margin-right:.3em}
svg.plot{width:100%;height:auto;font-size:10px}
svg .frame{fill:none;stroke:#bbb} svg .grid{stroke:#eee} svg .tick,svg .axis{fill:#555}
details{margin-left:1.2em} details>summary{cursor:pointer} .leaf{margin-left:2.4em}
.node{font-family:ui-monospace,monospace} .p{color:#666;font-size:.9em} .end{color:#a33;font-size:.85em}
"""

# The tooltip: filled from the embedded JSON on hover (mouse) or tap (touch: click).
_JS = """
(function(){
const data=JSON.parse(document.getElementById('report-data').textContent);
const tip=document.getElementById('tip');
const fmt=v=>v===null||v===undefined?'—':(v<0.0001&&v>0?v.toExponential(2):v.toFixed(4));
const esc=s=>String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function tokenHtml(t){
  let h='<div class="head">'+esc(t.text)+' <span class="p">id '+t.id+' · position '+t.i+(t.origin?' · '+t.origin:'')+'</span></div>';
  if(t.prob===null){return h+'<div>first token: nothing predicts it</div>';}
  h+='<div>probability '+fmt(t.prob)+(t.p_final!==null?' · p_final '+fmt(t.p_final):'')+
     ' · rank '+t.rank+' · entropy '+(t.entropy_bound?'≥':'')+(t.entropy===null?'—':t.entropy.toFixed(3)+' nats')+'</div>';
  if(t.top.length){
    h+='<table><tr><td>candidate</td><td>p_base</td><td>p_final</td></tr>';
    for(const c of t.top){h+='<tr'+(c.id===t.id?' class="chosen"':'')+'><td>'+esc(c.text)+'</td><td>'+fmt(c.p_base)+'</td><td>'+fmt(c.p_final)+'</td></tr>';}
    h+='</table>';
  }
  return h;
}
function show(el,x,y){
  const seg=data.segments[+el.dataset.seg];
  tip.innerHTML=seg.tokens.map(i=>tokenHtml(data.tokens[i])).join('<hr>');
  tip.style.display='block';
  const r=el.getBoundingClientRect();
  tip.style.left=Math.max(4,Math.min(r.left,window.innerWidth-tip.offsetWidth-8))+'px';
  const below=r.bottom+6;
  tip.style.top=(below+tip.offsetHeight<window.innerHeight?below:Math.max(4,r.top-tip.offsetHeight-6))+'px';
  document.querySelectorAll('.tok.on').forEach(o=>o.classList.remove('on'));el.classList.add('on');
}
const prompt=document.getElementById('prompt');
prompt.addEventListener('mouseover',e=>{const el=e.target.closest('.tok');if(el)show(el);});
prompt.addEventListener('click',e=>{const el=e.target.closest('.tok');if(el){show(el);e.stopPropagation();}});
document.addEventListener('click',()=>{tip.style.display='none';});
const pick=document.getElementById('layer');
function paint(){
  const layer=pick.value;
  document.querySelectorAll('#prompt .tok').forEach(el=>{
    const seg=data.segments[+el.dataset.seg];
    el.style.background=layer==='none'?'':seg.colours[layer];
    el.style.color=layer==='none'?'':(seg.ink[layer]);
  });
  document.querySelectorAll('.legend[data-layer]').forEach(l=>{l.style.display=l.dataset.layer===layer?'flex':'none';});
}
pick.addEventListener('change',paint);
})();
"""


def _json(value) -> str:
    """JSON that cannot end the <script> element early."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")


def _legend(layer: str, shown: bool) -> str:
    scale, _ = LAYERS[layer]
    hidden = "" if shown else ' style="display:none"'
    return (f'<div class="legend" data-layer="{layer}"{hidden}><b>{escape(layer)}</b> '
            f"<span>{escape(scale.low_label)}</span>"
            f'<span class="bar" style="background:linear-gradient(to right,{hex_rgb(scale.low)},{hex_rgb(scale.high)})"></span>'
            f"<span>{escape(scale.high_label)}</span>"
            f'<span class="none" style="background:{hex_rgb(NEUTRAL)}"></span><span>no prediction</span></div>')


def _prompt(report: Report) -> str:
    parts = []
    for k, seg in enumerate(report.segments):
        style = ""
        if report.layer != NO_LAYER:
            style = f' style="background:{seg["colours"][report.layer]};color:{seg["ink"][report.layer]}"'
        origin = report.tokens[seg["tokens"][0]]["origin"]
        mark = f" o-{origin}" if origin else ""
        parts.append(f'<span class="tok {seg["kind"]}{mark}" data-seg="{k}"{style}>{escape(seg["text"])}</span>')
    return "".join(parts)


def _candidates(rows: list[dict]) -> str:
    def p(v):
        return "—" if v is None else f"{v:.4f}"

    body = "".join(f"<tr><td>{escape(c['text'])}</td><td>{p(c['p_base'])}</td><td>{p(c['p_final'])}</td>"
                   f"<td>{c['id']}</td></tr>" for c in rows)
    return f'<table class="cands"><tr><th>token</th><th>p_base</th><th>p_final</th><th>id</th></tr>{body}</table>'


def _tree(tree: dict) -> str:
    """Nested <details> per expanded node, a line per leaf; iterative (deep trees)."""
    out: list[str] = []
    stack: list = [("close", None)] + [("node", c) for c in reversed(tree["children"])]
    out.append('<div id="tree">')
    while stack:
        what, node = stack.pop()
        if what == "close":
            out.append("</details>" if node is not None else "</div>")
            continue
        p = "" if node["p"] is None else f"p {node['p']:.4f}"
        path_p = "" if node["path_p"] is None else f" · path {node['path_p']:.3g}"
        label = (f'<span class="node">{escape(node["text"])}</span> '
                 f'<span class="p">{p}{path_p}</span>')
        if node["children"]:
            out.append(f"<details open><summary>{label}</summary>")
            stack.append(("close", node))
            stack.extend(("node", c) for c in reversed(node["children"]))
        else:
            end = f' <span class="end">{escape(node["end"])}</span>' if node["end"] else ""
            out.append(f'<div class="leaf">{label}{end}</div>')
    return "".join(out)


def render_html(report: Report) -> str:
    layers = [NO_LAYER, *LAYERS]
    options = "".join(f'<option value="{n}"{" selected" if n == report.layer else ""}>{n}</option>'
                      for n in layers)
    legends = "".join(_legend(n, n == report.layer) for n in LAYERS)
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in report.facts)
    prompt = _prompt(report)
    n = len(report.tokens)
    plots = [line_plot([("surprisal (nats)", report.series["surprisal"]),
                        ("entropy (nats)", report.series["entropy"])],
                       title="Surprisal −ln p and entropy along the prompt", y_label="nats",
                       plot_id="plot-surprisal")]
    compared = ""
    if report.comparison is not None:
        c = report.comparison
        plots.append(line_plot([(c["title"], c["kl"])], title=f"{c['title']} along the prompt",
                               y_label="nats", plot_id="plot-kl"))
        compared = ('<h2>Model comparison</h2><dl class="facts" id="comparison">'
                    + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in c["facts"]) + "</dl>")
    tracked = ""
    if report.tracked:
        plots.append(line_plot([(t["text"], t["probs"]) for t in report.tracked],
                               title="Tracked tokens' probability (p_base) along the prompt",
                               y_label="p", plot_id="plot-tracked"))
        rows = "".join(f"<tr><td>{escape(t['text'])}</td><td>{t['id']}</td><td>"
                       f"{'—' if t['probs'][-1] is None else format(t['probs'][-1], '.4f')}</td></tr>"
                       for t in report.tracked)
        tracked = ('<h2>Tracked tokens</h2><table class="cands" id="tracked"><tr><th>token</th><th>id</th>'
                   f"<th>p_base next</th></tr>{rows}</table>")
    tree = ""
    if report.tree is not None:
        t = report.tree
        tree = (f'<h2>Token tree</h2><p class="p">{t["size"]} nodes; search {escape(t["stopped"])}; '
                f"settings {escape(json.dumps(t['settings']))}</p>{_tree(t)}")
    data = {"tokens": report.tokens, "segments": report.segments}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(report.title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{escape(report.title)}</h1>
<dl class="facts">{facts}</dl>
<h2>Prompt <small class="p">({n} tokens; hover or tap a token; bold: picked or sampled, italic: forced)</small></h2>
<label>colour by <select id="layer">{options}</select></label>
{legends}
<div id="prompt">{prompt}</div>
<div id="tip" role="tooltip"></div>
<h2>Next token</h2>
{_candidates(report.next_top)}
{compared}
{tracked}
<h2>Along the prompt</h2>
{"".join(plots)}
{tree}
<script type="application/json" id="report-data">{_json(data)}</script>
<script>{_JS}</script>
</body></html>
"""


def write_html(report: Report, path: Path) -> None:
    """Write the page atomically (explorer/atomic.py): a reader never sees half of it.
    Raises OSError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, render_html(report), newline="\n")
