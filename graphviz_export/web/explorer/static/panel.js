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
        (view.notes.length ? `<h4>Notes</h4><p>${view.notes.map(esc).join('<br>')}</p>` : '') : '');
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
    let h = `<h3>${esc(d.label)}${d.label.includes('#') ? '' : ` <small>#${d.id}</small>`}</h3><table class="kv" id="facts">` +
      row('op', d.op + (d.exponent !== undefined ? ` ** ${d.exponent}` : '')) +
      `<tr><td>data</td><td class="num" data-k="data">${esc(d.data)}</td></tr>` +
      `<tr><td>grad</td><td class="num" data-k="grad">${esc(d.grad)}</td></tr>` +
      row('scope', d.path) + row('ops folded', d.ops_folded) + row('backward #', d.backward_rank) + '</table>';
    if (d.compare) {
      const [a, b] = d.compare.labels;
      h += `<h4>before → after</h4><table id="compare"><tr><td></td><td class="num">${esc(a)}</td><td class="num">${esc(b)}</td><td class="num">Δ</td></tr>` +
        ['data', 'grad'].map((k) => `<tr><td>${k}</td>` + d.compare[k].map((x, j) => `<td class="num" data-k="${k}${['0', '1', 'd'][j]}">${esc(x)}</td>`).join('') + '</tr>').join('') +
        '</table><p class="hint">Below: the differences (after − before) of this node, its inputs and its uses.</p>';
    }
    if (d.source) {
      const what = d.source.script ? `your script, ${esc(d.source.file)}:${d.source.line} in ${esc(d.source.function)}()` :
        `${esc(d.source.file)}:${d.source.line} (${esc(d.source.function)})`;
      h += `<h4 id="madeby">made by ${what}</h4><pre id="code">${esc(d.source.code)}</pre>` +
        (d.source.grad_at ? `<p class="hint">its derivative is written at ${esc(d.source.grad_at)}</p>` : '');
    }
    if (d.inputs.length) {
      h += `<h4>inputs: local derivative d out / d in</h4><table id="inputs"><tr><td>input</td><td class="num">local</td><td class="num">contribution</td></tr>`;
      for (const x of d.inputs) {
        h += `<tr><td><a ${nodeLink(x)}>${esc(x.label)}</a></td><td class="num" data-k="local">${esc(x.local)}</td>` +
             `<td class="num" data-k="contrib">${esc(x.contrib)}</td></tr>`;
      }
      h += '</table>';
    }
    h += `<h4>uses: grad = Σ contributions (${d.n_uses})</h4>`;
    if (d.is_loss) h += '<p>The loss: backward starts here with grad 1.</p>';
    if (d.uses.length) {
      h += `<table id="uses"><tr><td>used by</td><td class="num">local</td><td class="num">contribution</td></tr>`;
      for (const u of d.uses) {
        h += `<tr><td><a ${nodeLink(u)} title="${esc(u.path)}">${esc(u.label)}</a></td>` +
             `<td class="num" data-k="local">${esc(u.local)}</td><td class="num" data-k="contrib">${esc(u.contrib)}</td></tr>`;
      }
      if (d.n_uses > d.uses.length) h += `<tr><td colspan="3">… ${d.n_uses - d.uses.length} more</td></tr>`;
      h += `<tr class="sum"><td>sum</td><td></td><td class="num" data-k="sum">${esc(d.uses_sum)}</td></tr></table>` +
        `<p class="${d.sum_is_grad ? 'ok' : 'bad'}">${d.sum_is_grad ? '= grad, exactly' : '≠ grad'}</p>`;
    }
    h += `<p><a data-to="${esc(d.neighbourhood)}">show its neighbourhood</a></p>`;
    $('#panel').innerHTML = h;
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
