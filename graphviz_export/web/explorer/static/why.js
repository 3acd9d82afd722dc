/* microgpt-graph explorer: "why is this grad what it is?" The node check's verdict (failing nodes
 * marked red, the first failure one click from the line above the status bar), the identity badges
 * the server verified on the tape (view.badges), and the side panel's sections for a scalar: the
 * paths from the loss (each drawn as a route in the view on hover; the top one when the panel opens),
 * the remainder that makes them add up to the grad, why a grad is 0, the identities it is part of,
 * a cached key's grad position by position, and the check's finding at the node. Every figure and
 * link is the server's (/api/check, /api/node's `why` and `check`); a part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$, esc = P.esc;
  const NS = 'http://www.w3.org/2000/svg';
  let checkSeq = 0, checkTimer = null;
  P.check = null;                        // the last /api/check answer of the recording on screen

  // -- the node check ------------------------------------------------------------------------------
  async function pollCheck() {
    clearTimeout(checkTimer);
    const mine = ++checkSeq;
    let d;
    try {
      const r = await P.request('check', P.query(P.state));
      d = await r.json();
      if (!r.ok) throw new Error(d.error);
    } catch (e) { if (mine === checkSeq) drawCheck({status: 'error', error: e.message}); return; }
    if (mine !== checkSeq) return;
    P.check = d;
    drawCheck(d);
    if (d.status === 'running') checkTimer = setTimeout(pollCheck, 150);
  }
  function drawCheck(d) {
    const line = $('#checkline');
    for (const g of P.svg ? P.svg.querySelectorAll('g.node.failing') : []) g.classList.remove('failing');
    if (d.status === 'off') { line.hidden = true; return; }
    line.hidden = false;
    line.className = d.status === 'done' ? (d.ok ? 'ok' : 'bad') : '';
    if (d.status === 'running') { line.textContent = 'node check: running…'; return; }
    if (d.status === 'error') { line.textContent = `node check: could not run (${d.error})`; return; }
    const c = d.checked || {};
    if (d.ok) {
      line.textContent = `node check: ok — ${c.local} local derivatives, ${c.sum} grad sums agree (${d.seconds} s)`;
      return;
    }
    const f = d.first;
    const where = f.made_by ? ` · made by ${f.made_by.file}:${f.made_by.line}` +
      (f.made_by.derivative_at ? `, its derivative is written at ${f.made_by.derivative_at}` : '') : '';
    line.innerHTML = `<b>node check: FAILS</b> — ${d.failing_nodes} failing node${d.failing_nodes === 1 ? '' : 's'} ` +
      `(${esc(d.summary.join('; '))})${d.faults.length ? ` · fault injected: ${esc(d.faults.join(', '))}` : ''} · ` +
      `first: <a id="firstfail" title="show it and its neighbourhood">${esc(f.name || f.op)} #${f.node}: ${esc(f.reason)}</a>` +
      `${esc(where)}`;
    $('#firstfail').addEventListener('click', () => P.navigate(f.url));
    const names = new Set(d.marks);
    for (const g of P.svg.querySelectorAll('g.node')) g.classList.toggle('failing', names.has(g.dataset.name));
  }

  // -- identity badges: a small ✓ at the corner of each node an identity holds for ---------------------
  function drawBadges() {
    const svg = P.svg, badges = P.view.badges || {};
    const root = svg && svg.querySelector('g.graph');
    if (!root) return;
    for (const old of root.querySelectorAll('g.badge')) old.remove();
    // each node's box from its shape's points (viewbox.js shapeBox): no layout of the drawing asked
    const boxed = [...svg.querySelectorAll('g.node')].filter((g) => badges[g.dataset.name])
      .map((g) => [g, window.MicrogptCamera.shapeBox(g)]);
    for (const [g, b] of boxed) {
      const list = badges[g.dataset.name];
      const mark = document.createElementNS(NS, 'g');
      mark.setAttribute('class', 'badge');
      mark.dataset.node = g.dataset.name;
      mark.dataset.kinds = [...new Set(list.map((x) => x.kind))].join(' ');
      const tip = document.createElementNS(NS, 'title');
      tip.textContent = 'identities that hold here, checked on the tape:\n' + list.map((x) => '✓ ' + x.text).join('\n');
      const c = document.createElementNS(NS, 'circle');
      c.setAttribute('cx', b.x + b.width); c.setAttribute('cy', b.y); c.setAttribute('r', 6);
      const t = document.createElementNS(NS, 'text');
      t.setAttribute('x', b.x + b.width); t.setAttribute('y', b.y + 3.5); t.setAttribute('text-anchor', 'middle');
      t.textContent = '✓';
      mark.append(tip, c, t);
      root.append(mark);
    }
  }

  // -- the panel's sections (panel.js asks for them: P.whySections, P.afterNode) ------------------------
  const short = (stops) => {
    const names = stops.map((s) => s.label);
    return (names.length <= 7 ? names : names.slice(0, 3).concat(['…'], names.slice(-3))).join(' ← ');
  };
  function whySections(d) {
    const w = d.why;
    let h = '';
    if (d.check && d.check.length) {
      h += '<div id="checkfail" class="bad"><h4>node check: wrong here</h4>' + d.check.map((f) =>
        `<p>${esc(f.kind)}: ${esc(f.reason)}</p>` + (f.message ? `<p>${esc(f.message)}</p>` : '')).join('') +
        (d.source && d.source.derivative_at ? `<p>its derivative is written at ${esc(d.source.derivative_at)}</p>` : '') +
        '</div>';
    }
    if (!w) return h;
    const p = w.paths;
    if (p) {
      if (p.why_zero) {
        h += `<h4>why its grad is 0</h4><p id="whyzero" data-kind="${esc(p.why_zero.kind)}">${esc(p.why_zero.text)}</p>`;
        if (p.why_zero.edges) {
          h += '<table id="zeroedges">' + p.why_zero.edges.map((e) =>
            `<tr><td>${esc(e.label)}</td><td>${esc(e.why)}</td><td class="num">${esc(e.x)}</td></tr>`).join('') +
            (p.why_zero.n_edges > p.why_zero.edges.length ? `<tr><td colspan="3">… ${p.why_zero.n_edges - p.why_zero.edges.length} more</td></tr>` : '') +
            '</table>';
        }
      }
      if (p.paths.length) {
        h += `<h4>paths from the loss: ${p.paths.length} of ${esc(p.count)}</h4>` +
          '<p class="hint">Each: the local derivatives multiplied from the loss down (local × upstream, as backward does); ' +
          'hover one to draw its route.</p><table id="paths"><tr><td>#</td><td>route</td><td class="num">product</td></tr>';
        p.paths.forEach((x, k) => {
          h += `<tr class="path" data-k="${k}"><td>${k + 1}</td><td title="${esc(x.stops.map((s) => s.label).join(' ← '))}">` +
            `${esc(short(x.stops))}<br><span class="hint">${x.length} edges${x.zeros ? `, ${x.zeros} local derivative${x.zeros === 1 ? '' : 's'} 0` : ''}</span></td>` +
            `<td class="num" data-k="product">${esc(x.product)}</td></tr>`;
        });
        h += `<tr><td></td><td>remainder: the other ${esc(p.others)} paths</td><td class="num" data-k="remainder">` +
          `${p.remainder.length ? p.remainder.map(esc).join('<br>+ ') : '0'}</td></tr>` +
          `<tr class="sum"><td></td><td>= grad</td><td class="num" data-k="pathgrad">${esc(p.grad)}</td></tr></table>` +
          `<p class="${p.exact ? 'ok' : 'bad'}" id="pathsum">${p.exact ? 'paths + remainder = grad, bit for bit' :
            'the grad is not finite: no sum of paths reaches it'} <span class="hint">(${esc(p.order)})</span></p>`;
      }
    }
    if (w.kv) {
      h += '<h4>read by the positions (a cached key/value)</h4><table id="kv">' + w.kv.positions.map((r) =>
        `<tr><td>pos ${r.pos}</td><td class="num">${esc(r.sum)}</td></tr>`).join('') +
        `<tr class="sum"><td>Σ</td><td class="num">${esc(w.kv.total)}</td></tr><tr><td>grad</td><td class="num">${esc(w.kv.grad)}</td></tr></table>`;
    }
    if (w.identities.length) {
      h += '<h4>identities, checked on the tape</h4><ul id="identities">' + w.identities.map((b) =>
        `<li class="${b.holds ? 'ok' : 'bad'}" data-kind="${esc(b.kind)}">${b.holds ? '✓' : '✗'} ${esc(b.text)}</li>`).join('') + '</ul>';
    }
    return h;
  }
  // the route of path k (the top one by default) outlined in the drawing; hovering a path row switches
  function showRoute(d, k) {
    if (!P.svg) return;
    for (const el of P.svg.querySelectorAll('.route')) el.classList.remove('route');
    const p = d && d.why && d.why.paths;
    const path = p && p.paths[k || 0];
    if (!path || !path.route) return;
    for (const name of path.route.nodes) {
      const g = P.svg.querySelector(`g.node[data-name="${CSS.escape(name)}"]`);
      if (g) g.classList.add('route');
    }
    for (const id of path.route.edges) {
      const e = P.svg.querySelector('#' + CSS.escape(id));
      if (e) e.classList.add('route');
    }
  }
  let shown = null;
  function afterNode(d) {
    shown = d;
    showRoute(d, 0);
    for (const row of document.querySelectorAll('#paths tr.path')) {
      row.addEventListener('mouseenter', () => showRoute(shown, Number(row.dataset.k)));
      row.addEventListener('mouseleave', () => showRoute(shown, 0));
    }
  }

  window.explorer.on('view', () => {
    if (!P.state.sel) showRoute(null);    // (a selection draws its own when its details arrive)
    drawBadges();
    pollCheck();
  });
  Object.assign(P, {whySections, afterNode, showRoute, pollCheck});
})(window.explorer.page);
