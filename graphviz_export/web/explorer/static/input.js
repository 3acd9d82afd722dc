/* microgpt-graph explorer: clicks on the graph and the keys. A folded node, an expansion's frame, a
 * matrix cell, up one, the previous or next position: each goes to the view's link for it (the
 * server's links.py); a click on a scalar selects it, a double click opens its neighbourhood (the
 * link /api/node gives). A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$;
  const canvas = $('#canvas');

  canvas.addEventListener('click', (e) => {
    if (P.dragged) { P.dragged = false; return; }
    const view = P.view;
    const frame = e.target.closest('g.frame');
    if (frame && view) { P.navigate(view.links.fold[frame.dataset.pattern]); return; }
    const g = e.target.closest('g.node');
    if (!g && view && P.state.sel && !e.target.closest('g.edge')) {   // the background: drop the selection
      P.setState({sel: null}, {replace: true});
      return;
    }
    if (!g || !view) return;
    const name = g.dataset.name || P.nodeName(g);
    const heat = name.match(/^(m\d+)_([dg])(\d+)$/);
    if (heat) {                       // a row of a matrix's heat map: the cell under the pointer
      const m = view.nodes[heat[1]], cell = view.links.cells[heat[1]];
      const b = window.MicrogptCamera.shapeBox(g);
      const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(g.getScreenCTM().inverse());
      const col = Math.max(0, Math.min(m.shape[1] - 1, Math.floor((p.x - b.x) / b.width * m.shape[1])));
      P.typed(cell.url, {[cell.field]: cell.text.replace('{row}', heat[3]).replace('{col}', col)});
      return;
    }
    const n = view.nodes[name];
    if (!n) return;
    if (n.k === 's') { P.setState({sel: n.id}, {replace: true}); return; }
    if (n.k === 'r') { P.flash(n.refers); return; }
    if (n.k === 'g') P.showGroup(name, n);
    const to = view.links.nodes[name];
    if (to !== undefined) {
      P.reveal = n.path || null;      // after the redraw, show what this group became (not the whole view)
      P.navigate(to);
    }
  });
  canvas.addEventListener('dblclick', async (e) => {
    const g = e.target.closest('g.node');
    if (!g || !P.view) return;
    const n = P.view.nodes[g.dataset.name];
    if (!n || n.k !== 's') return;
    try { P.navigate((await P.nodeDetails(n.id)).neighbourhood); } catch (err) { P.showMsg(err.message); }
  });

  document.addEventListener('keydown', (e) => {
    const typing = e.target.closest('input, select, textarea');
    const links = P.view ? P.view.links : {};
    if (e.key === 'Escape') {
      if (!$('#help').hidden) { $('#help').hidden = true; return; }
      if (!$('#results').hidden) { P.hideResults(); return; }
      if (typing) { e.target.blur(); return; }
      if (P.state.sel) P.setState({sel: null}, {replace: true});
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const step = 80;
    const k = e.key;
    if (k === '?') $('#help').hidden = !$('#help').hidden;
    else if (k === '/') { e.preventDefault(); $('#q').focus(); $('#q').select(); }
    else if (k === 'f' || k === '0') P.fit();
    else if (k === 'z') P.fitBlock();
    else if (k === '1') P.home();
    else if (k === 'm') P.toggleMinimap();
    else if (k === 'p') P.toggleSide();
    else if (k === '+' || k === '=') P.zoom(1 / 1.25);
    else if (k === '-' || k === '_') P.zoom(1.25);
    else if (k === 'o') P.setUrlState({ov: {'': 'grad', grad: 'contrib', contrib: null}[P.state.ov || '']});
    else if (k === 'ArrowLeft') P.pan(step, 0);
    else if (k === 'ArrowRight') P.pan(-step, 0);
    else if (k === 'ArrowUp') P.pan(0, step);
    else if (k === 'ArrowDown') P.pan(0, -step);
    else if (k === 'u' || k === 'Backspace') { if (links.up) P.navigate(links.up); }
    else if (k === '[' || k === ']') { const to = k === '[' ? links.prev : links.next; if (to) P.navigate(to); }
    else return;
    e.preventDefault();
  });
})(window.explorer.page);
