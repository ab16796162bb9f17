"""The inline style and script of the explain page (``explain_html``): kept apart so each file reads as one language.

What it is for: ``STYLE`` (the page's CSS) and ``SCRIPT`` (plain JavaScript, no library): it reads the numbers
embedded in the page (``#trace-data``) and, when a neuron or a weight is hovered or clicked, writes its
equations with the numbers plugged in into the side panel: feedforward, BP1 or BP2, BP3 (or BP4 for a
weight), the update, and the angel's measurement; with a batch, a chooser switches the example shown.
Numbers are rounded as ``explain_page.number`` rounds them (4 significant digits).
What it is not: no computing: every number is the trace's; the script only picks and formats them.
"""

STYLE = """
:root{--ink:#1a202c;--muted:#5a6472;--line:#e2e8f0}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);margin:0;background:#f7f9fc}
header{padding:14px 24px 4px}h1{font-size:20px;margin:0 0 4px}header p{margin:2px 0;color:var(--muted)}
.cost b{color:var(--ink)}label{margin-left:16px}
main{display:flex;gap:18px;padding:8px 24px;align-items:flex-start;flex-wrap:wrap}
.figure{background:#fff;border:1px solid var(--line);border-radius:10px;padding:8px;overflow-x:auto;max-width:100%}
#network{max-width:100%;height:auto}
#panel{flex:1 1 380px;max-width:600px;background:#fff;border:1px solid var(--line);border-radius:10px;
 padding:10px 16px;position:sticky;top:10px}
#panel h2{font-size:16px;margin:4px 0 8px}#panel ol{padding-left:20px;margin:4px 0}#panel li{margin:3px 0}
.hint,.ex{color:var(--muted);margin:6px 0}
.node{cursor:pointer}.node rect{fill:#fff;stroke:#4a5568;stroke-width:1.3}
.node text,.v-y{font:13px ui-monospace,"DejaVu Sans Mono",monospace;fill:var(--ink)}
.node .v-d{fill:#6b46c1}.v-y{fill:var(--muted)}
.node:hover rect,.node.selected rect,.node:focus-visible rect{stroke:#d53f8c;stroke-width:2.6}.node:focus{outline:none}
.edge{cursor:pointer}.edge .hit{stroke:transparent;stroke-width:12;fill:none}
.edge .wire{fill:none;opacity:.72}.edge:hover .wire,.edge.selected .wire{opacity:1;stroke:#d53f8c}
.layer-title{font-weight:600;text-anchor:middle;font-size:14px}
.layer-sub,.more,.norms{fill:var(--muted);text-anchor:middle;font-size:12px}.norms{font-size:11px}
.legend{color:var(--muted);font-size:13px;margin:6px 4px 2px}
.swatch{display:inline-block;width:18px;height:4px;vertical-align:middle;margin:0 4px 0 10px}
.eq{display:flex;gap:10px;margin:9px 0;align-items:baseline}.eq small{color:var(--muted)}
.tag{flex:none;font-size:11px;font-weight:700;padding:2px 6px;border-radius:4px;background:#edf2f7;
 color:#2d3748;min-width:84px;text-align:center}
.tag-BP1,.tag-BP2{background:#e9d8fd;color:#44337a}.tag-BP3,.tag-BP4{background:#c6f6d5;color:#22543d}
.tag-update{background:#fefcbf;color:#744210}.tag-angel{background:#fed7e2;color:#702459}
section.angel{padding:4px 24px 28px}section.angel h2{font-size:16px}
table{border-collapse:collapse;background:#fff}
th,td{padding:3px 12px;border-bottom:1px solid var(--line);text-align:right;font-variant-numeric:tabular-nums}
"""

SCRIPT = r"""
(() => {
const D = JSON.parse(document.getElementById('trace-data').textContent);
const I = D.info, L = I.sizes.length - 1, batch = I.batch;
const shownOf = l => l === 0 ? D.input_shown : D.layers[l - 1].shown;
const idx = I.sizes.map((_, l) => shownOf(l).filter(j => j !== null));
const pos = (l, j) => idx[l].indexOf(j);
const layer = l => D.layers[l - 1];
const panel = document.getElementById('panel'), start = panel.innerHTML;
let ex = 0, pinned = null;

function g4(v) {  // 4 significant digits, as Python's format(v, '.4g')
  if (typeof v === 'string') return v;
  if (v === 0) return '0';
  const e = Math.floor(Math.log10(Math.abs(Number(v.toPrecision(4)))));
  let t;
  if (e < -4 || e >= 4) {
    const [m, x] = v.toExponential(3).split('e');
    const n = Number(x);
    t = m.replace(/\.?0+$/, '') + 'e' + (n < 0 ? '-' : '+') + String(Math.abs(n)).padStart(2, '0');
  } else {
    t = v.toPrecision(4);
    if (t.includes('.')) t = t.replace(/\.?0+$/, '');
  }
  return t.replace(/-/g, '\u2212');
}
const par = v => (typeof v === 'number' && v < 0) ? '(' + g4(v) + ')' : g4(v);
const S = (s, sup, sub) => s + (sup === '' ? '' : '<sup>' + sup + '</sup>')
  + (sub === '' ? '' : '<sub>' + sub + '</sub>');
const ij = (j, k) => (j >= 10 || k >= 10) ? j + ',' + k : '' + j + k;
const act = (l, k, x) => l === 0 ? D.x[x][pos(0, k)] : layer(l).a[x][pos(l, k)];
function sum(terms) {  // a + b + c, or the first three and the last of a long sum, gaps as ⋯
  const t = terms.map(s => s === null ? '\u22ef' : s);
  return (t.length > 5 ? [...t.slice(0, 3), '\u22ef', t[t.length - 1]] : t).join(' + ');
}
const exampleTerms = f => {
  const t = [];
  for (let x = 0; x < D.examples; x++) t.push(f(x));
  if (D.examples < I.m) t.push(null);
  return t;
};

function nodeRows(l, j) {
  const e = layer(l), p = pos(l, j), top = l === L, sig = top ? I.output_activation : I.activation;
  const J = j + 1, net = e.net[ex][p], a = e.a[ex][p], d = e.delta[ex][p], rows = [];
  const inputs = shownOf(l - 1).map(k => k === null ? null
    : par(e.w[p][pos(l - 1, k)]) + '\u00b7' + par(act(l - 1, k, ex)));
  rows.push(['feedforward', `${S('net', l, J)} = \u03a3<sub>k</sub> ${S('w', l, J + 'k')} ${S('a', l - 1, 'k')}
    + ${S('b', l, J)} = ${sum(inputs)} + ${par(e.b[p])} = <b>${g4(net)}</b>`]);
  const of = I.jacobian && top ? `${sig}(net<sup>L</sup>)<sub>${J}</sub>` : `${sig}(${g4(net)})`;
  rows.push(['feedforward', `${S('a', l, J)} = ${of} = <b>${g4(a)}</b>`]);
  if (top) {
    const u = e.upstream[ex][p], y = D.y[ex][p];
    if (I.bp1 === 'closed') {
      const form = I.jacobian ? `${S('a', 'L', J)} \u03a3<sub>i</sub> y<sub>i</sub> \u2212 y<sub>${J}</sub>`
        : `${S('a', 'L', J)} \u2212 y<sub>${J}</sub>`;
      const sumY = D.y[ex].reduce((s, v) => s + v, 0);
      const plug = I.jacobian ? `${g4(a)}\u00b7${g4(sumY)} \u2212 ${par(y)}` : `${g4(a)} \u2212 ${par(y)}`;
      rows.push(['BP1', `${S('\u03b4', 'L', J)} = ${form} = ${plug} = <b>${g4(d)}</b><br><small>the closed form
        the code uses:
        with ${I.cost} and ${sig}, \u03c3\u2032 cancels in \u2207<sub>a</sub>C \u2299 \u03c3\u2032(net<sup>L</sup>)
        (here \u2202C/\u2202${S('a', 'L', J)} = ${g4(u)})</small>`]);
    } else if (I.bp1 === 'jacobian') {
      const terms = e.shown.map(i => i === null ? null
        : par(e.sigma_prime[ex][pos(l, i)][p]) + '\u00b7' + par(e.upstream[ex][pos(l, i)]));
      rows.push(['BP1', `${S('\u03b4', 'L', J)} = \u03a3<sub>i</sub> J<sub>i${J}</sub> (\u2207<sub>a</sub>C)<sub>i</sub>
        = ${sum(terms)} = <b>${g4(d)}</b><br><small>${sig} couples the outputs: its \u03c3\u2032 is the Jacobian
        J = \u2202a<sup>L</sup>/\u2202net<sup>L</sup>, J<sub>ij</sub> = a<sub>i</sub>(1[i=j] \u2212 a<sub>j</sub>),
        and BP1 reads \u03b4<sup>L</sup> = J<sup>T</sup>\u2207<sub>a</sub>C</small>`]);
    } else {
      const sp = e.sigma_prime[ex][p];
      const grad = I.cost !== 'quadratic' ? ''
        : ` = ${S('a', 'L', J)} \u2212 y<sub>${J}</sub> = ${g4(a)} \u2212 ${par(y)}`;
      rows.push(['BP1', `${S('\u03b4', 'L', J)} = \u2202C/\u2202${S('a', 'L', J)}
        \u00b7 \u03c3\u2032(${S('net', 'L', J)})
        = ${par(u)} \u00b7 ${par(sp)} = <b>${g4(d)}</b><br><small>\u2202C/\u2202${S('a', 'L', J)}${grad} = ${g4(u)};
        \u03c3\u2032(${g4(net)}) = ${g4(sp)}</small>`]);
    }
  } else {
    const nx = layer(l + 1), u = e.upstream[ex][p], sp = e.sigma_prime[ex][p];
    const terms = nx.shown.map(k => k === null ? null
      : par(nx.w[pos(l + 1, k)][p]) + '\u00b7' + par(nx.delta[ex][pos(l + 1, k)]));
    rows.push(['BP2', `${S('\u03b4', l, J)} = (\u03a3<sub>k</sub> ${S('w', l + 1, 'k' + J)} ${S('\u03b4', l + 1, 'k')})
      \u00b7 \u03c3\u2032(${S('net', l, J)}) = (${sum(terms)}) \u00b7 ${par(sp)} = ${par(u)} \u00b7 ${par(sp)}
      = <b>${g4(d)}</b>`]);
  }
  const g = e.nabla_b[p];
  rows.push(['BP3', batch
    ? `\u2202C/\u2202${S('b', l, J)} = (1/m) \u03a3<sub>x</sub> ${S('\u03b4', 'x,' + l, J)}
       = (1/${I.m})(${sum(exampleTerms(x => par(e.delta[x][p])))}) = <b>${g4(g)}</b>`
    : `\u2202C/\u2202${S('b', l, J)} = ${S('\u03b4', l, J)} = <b>${g4(g)}</b>`]);
  rows.push(['update', `${S('b', l, J)} \u2190 ${S('b', l, J)} \u2212 \u03b7 \u2202C/\u2202${S('b', l, J)}
    = ${g4(e.b[p])} \u2212 ${par(D.eta)}\u00b7${par(g)} = <b>${g4(e.b_new[p])}</b>`]);
  rows.push(['angel', `nudge ${S('net', l, J)} by \u00b1\u0394: \u0394C/\u0394 = <b>${g4(e.angel[ex][p])}</b>,
    ${batch ? '\u03b4/m' : '\u03b4'} = ${g4(e.angel_delta[ex][p])}
    (relative error ${Number(e.angel_rel[ex][p]).toExponential(1)})`]);
  const where = l === L ? 'output layer' : 'hidden layer';
  return [`Neuron ${J} of layer ${l} (${where})`, rows];
}

function edgeRows(l, j, k) {
  const e = layer(l), p = pos(l, j), q = pos(l - 1, k), w = e.w[p][q], g = e.nabla_w[p][q];
  const J = j + 1, K = k + 1, sub = ij(J, K), rows = [];
  rows.push(['weight', `${S('w', l, sub)} = <b>${g4(w)}</b>: from neuron ${K} of layer ${l - 1}
    to neuron ${J} of layer ${l}`]);
  rows.push(['BP4', batch
    ? `\u2202C/\u2202${S('w', l, sub)} = (1/m) \u03a3<sub>x</sub> ${S('a', 'x,' + (l - 1), K)}
       ${S('\u03b4', 'x,' + l, J)}
       = (1/${I.m})(${sum(exampleTerms(x => par(act(l - 1, k, x)) + '\u00b7' + par(e.delta[x][p])))}) = <b>${g4(g)}</b>`
    : `\u2202C/\u2202${S('w', l, sub)} = ${S('a', l - 1, K)} ${S('\u03b4', l, J)}
       = ${par(act(l - 1, k, 0))}\u00b7${par(e.delta[0][p])}
       = <b>${g4(g)}</b>`]);
  rows.push(['update', `${S('w', l, sub)} \u2190 ${S('w', l, sub)} \u2212 \u03b7 \u2202C/\u2202${S('w', l, sub)}
    = ${g4(w)} \u2212 ${par(D.eta)}\u00b7${par(g)} = <b>${g4(e.w_new[p][q])}</b>`]);
  return [`Weight ${S('w', l, sub)}`, rows];
}

function inputRows(k) {
  const v = D.x[ex][pos(0, k)];
  return [`Input ${k + 1}`, [['feedforward', `${S('a', 0, k + 1)} = x<sub>${k + 1}</sub> = <b>${g4(v)}</b>:
    the input layer passes x on; layer 1 weighs it by w<sup>1</sup>`]]];
}

function render(el) {
  const d = el.dataset, l = Number(d.l), j = Number(d.j);
  const [title, rows] = d.k !== undefined ? edgeRows(l, j, Number(d.k)) : l === 0 ? inputRows(j) : nodeRows(l, j);
  panel.innerHTML = `<h2>${title}</h2>` + (batch ? `<p class="ex">example ${ex + 1} of ${I.m} (its own cost for
    BP1 and BP2; the mean over all m for BP3, BP4 and the update)</p>` : '') + rows.map(([t, h]) =>
    `<div class="eq"><span class="tag tag-${t}">${t}</span><div>${h}</div></div>`).join('');
}

function label() {  // the numbers on the nodes, for the example shown
  document.querySelectorAll('.node').forEach(n => {
    const l = Number(n.dataset.l), j = Number(n.dataset.j);
    const set = (c, s) => { const t = n.querySelector(c); if (t) t.textContent = s; };
    if (l === 0) { set('.v-x', `x${j + 1} = ${g4(D.x[ex][pos(0, j)])}`); return; }
    const e = layer(l), p = pos(l, j);
    set('.v-net', `net ${g4(e.net[ex][p])}`);
    set('.v-a', `a ${g4(e.a[ex][p])}`);
    set('.v-d', `\u03b4 ${g4(e.delta[ex][p])}`);
    set('.v-y', `y = ${g4(D.y[ex][p])}`);
  });
  document.querySelectorAll('.norms').forEach(t => {  // a summarised layer's norms
    const l = Number(t.dataset.l);
    t.textContent = l === 0 ? `\u2016x\u2016 = ${g4(D.x_norm[ex])}`
      : `\u2016a\u2016 = ${g4(layer(l).norm_a[ex])}, \u2016\u03b4\u2016 = ${g4(layer(l).norm_delta[ex])}`;
  });
}

document.querySelectorAll('.node, .edge').forEach(el => {
  el.addEventListener('mouseenter', () => render(el));
  el.addEventListener('focus', () => render(el));
  el.addEventListener('mouseleave', () => { if (pinned) render(pinned); else panel.innerHTML = start; });
  el.addEventListener('click', () => {
    document.querySelectorAll('.selected').forEach(s => s.classList.remove('selected'));
    pinned = el; el.classList.add('selected'); render(el);
  });
});
const chooser = document.getElementById('example');
if (chooser) {
  chooser.addEventListener('change', () => { ex = Number(chooser.value); label(); if (pinned) render(pinned); });
}
})();
"""
