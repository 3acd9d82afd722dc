/* microgpt-graph explorer: the side panel (a scalar's details, a group's counts; folds away with p)
 * and the crumbs. Every link in them is the server's (/api/node, the view's links.crumbs).
 * A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$, esc = P.esc;

  function clearPanel() {
    const view = P.view;
    $('#panel').innerHTML = '<p class="hint">Click a node: a folded node opens in place, a scalar shows its data, ' +
      'grad, local derivatives and the uses that sum to its grad here.</p>' +
      (view ? `<h4>This view</h4><p>${esc(view.title)}</p>` +
        (view.fallback || view.notes.length ? `<h4>Notes</h4><p>${[view.fallback, ...view.notes].filter(Boolean)
          .map(esc).join('<br>')}</p>` : '') : '') +
      nonfinite();
  }
  // where NaN or infinity starts in this recording (/api/info): each a link to its neighbourhood
  function nonfinite() {
    const bad = P.info && P.info.nonfinite;
    if (!bad) return '';
    const row = (k, words) => bad[k] ? `<p class="bad">${words}: <a data-to="${esc(bad[k].to)}" data-k="${k}">` +
      `${esc(bad[k].name)}</a> = ${esc(window.MicrogptFormat.fmt(bad[k].value))}</p>` : '';
    return '<h4>Not finite</h4>' + row('data', 'the first NaN or infinite value, in forward order') +
      row('grad', 'the first NaN or infinite grad, in backward order');
  }
  function showGroup(name, n) {
    const ops = Object.entries(n.opcounts || {}).map(([k, v]) => `${v} ${k}`).join(', ');
    $('#panel').innerHTML = `<h3>${esc(n.path)}</h3><table class="kv">
      <tr><td>folded</td><td>${n.ops} ops (${esc(ops)})</td></tr>
      <tr><td>side</td><td>${esc(n.side)}</td></tr>
      <tr><td>first id</td><td class="num">${n.first}</td></tr></table>`;
  }
  // a scalar's details in the view on screen (/api/node): its figures, and where each node it
  // names leads (selected in place when drawn, else its neighbourhood: the server says which)
  async function nodeDetails(id) {
    const r = await P.request('node', P.query(Object.assign({}, P.state, {id})));
    const d = await r.json();
    if (!r.ok) throw new Error(d.error);
    return d;
  }
  // a link to another node: where it goes, whether that is a selection here (history: replace)
  const nodeLink = (x) => `data-sel="${x.id}" data-to="${esc(x.to)}"${x.here ? ' data-here="1"' : ''}` +
    (x.node ? ` data-node="${esc(x.node)}"` : '');
  async function showNode(id) {
    let d;
    try { d = await nodeDetails(id); } catch (e) { P.showMsg(e.message); return; }
    const row = (k, v) => `<tr><td>${k}</td><td class="num">${esc(v)}</td></tr>`;
    const D = d.compare ? 'Δ' : '';     // compare: a number without a frame is a difference, and says so
    let h = `<h3>${esc(d.label)}${d.label.includes('#') ? '' : ` <small>#${d.id}</small>`}</h3><table class="kv" id="facts">` +
      row('op', d.op + (d.exponent !== undefined ? ` ** ${d.exponent}` : '')) +
      `<tr><td>${D}data</td><td class="num" data-k="data">${esc(d.data)}</td></tr>` +
      `<tr><td>${D}grad</td><td class="num" data-k="grad">${esc(d.grad)}</td></tr>` +
      row('scope', d.path) + row('ops folded', d.ops_folded) + row('backward #', d.backward_rank) + '</table>';
    const frames = (c) => `<tr><td></td><td class="num" title="${esc(c.labels[0])}">before</td>` +
      `<td class="num" title="${esc(c.labels[1])}">after</td><td class="num" title="after − before">Δ</td></tr>`;
    const three = (k, xs) => xs.map((x, j) => `<td class="num" data-k="${k}${['0', '1', 'd'][j]}">${esc(x)}</td>`).join('');
    if (d.compare) {
      h += `<h4>before → after</h4><table id="compare">${frames(d.compare)}` +
        ['data', 'grad'].map((k) => `<tr><td>${k}</td>${three(k, d.compare[k])}</tr>`).join('') +
        `</table><p class="hint">before: ${esc(d.compare.labels[0])}; after: ${esc(d.compare.labels[1])}. ` +
        'Inputs: differences (Δ = after − before); uses: all three.</p>';
    }
    if (d.source) {       // the innermost line that made it, and the calls that led there (recording/madeby.py)
      const s = d.source, chain = s.chain_text ? ` <span class="hint" id="chain">${esc(s.chain_text)}</span>` : '';
      const what = s.script ? `your script, ${esc(s.file)}:${s.line} in ${esc(s.function)}()` :
        `${esc(s.file)}:${s.line} (${esc(s.function)})`;
      h += `<h4 id="madeby">made by ${what}</h4>${chain}<pre id="code">${esc(s.code)}</pre>` +
        (s.derivative_at || s.grad_at ? `<p class="hint" id="derivat">its derivative is written at ${esc(s.derivative_at || s.grad_at)}</p>` : '');
    }
    if (d.inputs.length) {
      h += `<h4>inputs: ${D}local derivative d out / d in</h4><table id="inputs"><tr><td>input</td><td class="num">${D}local</td><td class="num">${D}contribution</td></tr>`;
      const rules = (d.why && d.why.rules) || [];
      d.inputs.forEach((x, k) => {
        h += `<tr><td><a ${nodeLink(x)}>${esc(x.label)}</a></td><td class="num" data-k="local">${esc(x.local)}</td>` +
             `<td class="num" data-k="contrib">${esc(x.contrib)}</td></tr>`;
        const r = rules[k];     // the rule behind this local derivative, filled in (recording/rules.py)
        if (r) h += `<tr class="rule${r.agrees === false ? ' bad' : ''}"><td colspan="3" data-k="rule">${esc(r.text)}</td></tr>`;
      });
      h += '</table>';
    }
    h += `<h4>uses: grad = Σ contributions (${d.n_uses})</h4>`;
    if (d.is_loss) h += '<p>The loss: backward starts here with grad 1.</p>';
    if (d.uses.length && d.compare) {
      // each frame's sum against its own grad; the Δ column's rounded differences are never summed
      const c = d.compare;
      h += `<table id="uses">${frames(c).replace('<td></td>', '<td>used by</td>')}`;
      d.uses.forEach((u, k) => {
        h += `<tr><td><a ${nodeLink(u)} title="${esc(u.path)}">${esc(u.label)}</a></td>${three('contrib', c.uses[k])}</tr>`;
      });
      if (d.n_uses > d.uses.length) h += `<tr><td colspan="4">… ${d.n_uses - d.uses.length} more</td></tr>`;
      h += `<tr class="sum"><td>Σ</td>${three('sum', c.sums)}</tr><tr><td>grad</td>${three('grad', c.grad)}</tr></table>` +
        ['before', 'after'].map((f, j) => `<p class="${c.sum_is_grad[j] ? 'ok' : 'bad'}" data-k="check${j}">${f}: ` +
          `${c.sum_is_grad[j] ? 'Σ = grad, exactly' : 'Σ ≠ grad'}</p>`).join('') +
        '<p class="hint">Δ of Σ = Σ after − Σ before; the Δ column, each difference rounded on its own, ' +
        'adds up to Δgrad only to rounding.</p>';
    } else if (d.uses.length) {
      h += `<table id="uses"><tr><td>used by</td><td class="num">local</td><td class="num">contribution</td></tr>`;
      for (const u of d.uses) {
        h += `<tr><td><a ${nodeLink(u)} title="${esc(u.path)}">${esc(u.label)}</a></td>` +
             `<td class="num" data-k="local">${esc(u.local)}</td><td class="num" data-k="contrib">${esc(u.contrib)}</td></tr>`;
      }
      if (d.n_uses > d.uses.length) h += `<tr><td colspan="3">… ${d.n_uses - d.uses.length} more</td></tr>`;
      h += `<tr class="sum"><td>sum</td><td></td><td class="num" data-k="sum">${esc(d.uses_sum)}</td></tr></table>` +
        `<p class="${d.sum_is_grad ? 'ok' : 'bad'}">${d.sum_is_grad ? '= grad, exactly' : '≠ grad'}</p>`;
    }
    if (P.whySections) h += P.whySections(d);       // paths, identities, the check (why.js)
    h += `<p><a data-to="${esc(d.neighbourhood)}">show its neighbourhood</a></p>`;
    $('#panel').innerHTML = h;
    if (P.afterNode) P.afterNode(d);
  }
  // a node named in the panel (an input, a use): hovering it outlines it in the graph, when drawn
  function peek(e, on) {
    const a = e.target.closest && e.target.closest('a[data-node]');
    if (!a || !P.svg) return;
    const g = P.svg.querySelector(`g.node[data-name="${CSS.escape(a.dataset.node)}"]`);
    if (g) g.classList.toggle('peek', on);
  }
  $('#panel').addEventListener('mouseover', (e) => peek(e, true));
  $('#panel').addEventListener('mouseout', (e) => peek(e, false));
  $('#panel').addEventListener('click', (e) => {
    const a = e.target.closest('a[data-to]');
    if (a) P.navigate(a.dataset.to, {replace: !!a.dataset.here});
  });

  // -- the side panel folds away (p), giving the graph its room; kept in the URL (side=hide) --------
  function applySide() {
    const hide = P.state.side === 'hide';
    if (document.body.classList.contains('side-hidden') === hide) return;
    document.body.classList.toggle('side-hidden', hide);
    $('#sidebtn').textContent = hide ? '◂ Panel' : 'Panel ▸';
    $('#sidebtn').title = hide ? 'Show the side panel (p)' : 'Hide the side panel (p)';
    P.reframe();
  }
  function toggleSide() { P.setUrlState({side: P.state.side === 'hide' ? null : 'hide'}); }
  $('#sidebtn').addEventListener('click', toggleSide);

  // -- the crumbs: where you are; each leads where the server says (links.crumbs) -------------------
  function drawCrumbs() {
    const c = $('#crumbs');
    const crumbs = P.view.crumbs;
    c.innerHTML = '';
    crumbs.forEach((cr, k) => {
      if (k) c.insertAdjacentHTML('beforeend', ' <span class="sep">›</span> ');
      const last = k === crumbs.length - 1;
      const a = document.createElement(last ? 'span' : 'a');
      a.innerHTML = `<span class="lvl">${esc(cr.level)} </span>${esc(cr.label)}`;
      if (last) a.className = 'cur';
      a.dataset.k = k;
      a.addEventListener('click', () => P.navigate(P.view.links.crumbs[k]));
      c.append(a);
    });
    c.title = c.textContent;            // the line may cut a long trail short: the whole of it
  }

  Object.assign(P, {clearPanel, showGroup, showNode, nodeDetails, applySide, toggleSide, drawCrumbs});
})(window.explorer.page);
