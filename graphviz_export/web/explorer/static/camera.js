/* microgpt-graph explorer: the camera. Pan and zoom change the SVG's viewBox (nothing is laid out
 * again); a fresh view opens readable at where to look first; z fits the opened block; the minimap
 * shows the whole drawing when much of it is off screen. A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$;
  const READABLE = 11;               // px: the font size a fresh view opens at (when fit is smaller)
  let vb0 = null, vb = null;         // the whole drawing's box and the part on screen (viewBox units)
  let size = null;                   // the canvas size (px) vb was set for

  // a new SVG on screen: its whole box, and the element sized to the canvas
  function newDrawing() {
    const svg = P.svg;
    const box = svg.viewBox.baseVal;
    vb0 = {x: box.x, y: box.y, w: box.width, h: box.height};
    svg.setAttribute('width', '100%');
    svg.setAttribute('height', '100%');
    svg.removeAttribute('style');
  }

  // -- pan and zoom on the viewBox -------------------------------------------------------------
  function apply() {
    if (!P.svg) return;
    P.svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
    moveMinimap();
  }
  function fitBox(b, maxScale) {
    const r = $('#canvas').getBoundingClientRect();
    const pad = 12;
    const top = $('#camera').offsetHeight + 6;        // the camera's buttons sit over the canvas's top edge
    const s = Math.min((r.width - pad) / b.w, (r.height - pad - top) / b.h, maxScale);
    const w = r.width / s, h = r.height / s;
    size = {w: r.width, h: r.height};
    vb = {x: b.x + b.w / 2 - w / 2, y: b.y + b.h / 2 - h / 2 - top / 2 / s, w, h};
    apply();
  }
  function fit() { if (vb0) fitBox(vb0, 1.6); }
  // the box of these nodes in viewBox coordinates (null: none drawn)
  function boxOf(names) {
    const root = P.svg.querySelector('g.graph');
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const name of names) {
      const g = P.svg.querySelector(`g.node[data-name="${CSS.escape(name)}"]`);
      if (!g) continue;
      const b = g.getBBox();
      x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y); x1 = Math.max(x1, b.x + b.width); y1 = Math.max(y1, b.y + b.height);
    }
    if (!isFinite(x0) || !root) return null;
    // node boxes are in the graph group's coordinates: map them through its transform
    const m = root.transform.baseVal.consolidate();
    const p0 = new DOMPoint(x0, y0).matrixTransform(m ? m.matrix : new DOMMatrix());
    const p1 = new DOMPoint(x1, y1).matrixTransform(m ? m.matrix : new DOMMatrix());
    return {x: p0.x, y: p0.y, w: p1.x - p0.x, h: p1.y - p0.y};
  }
  function focusOn(names) {
    const c = boxOf(names);
    if (!c) { home(); return; }
    const b = {x: c.x - 60, y: c.y - 60, w: c.w + 120, h: c.h + 120};
    // never zoom out past the whole picture nor in past 1.6x
    if (b.w >= vb0.w && b.h >= vb0.h) fit(); else fitBox(b, 1.6);
    // many matches spread out, their text too small to read (< 9 px): zoom in on the first one;
    // smaller but readable, they stay all on screen
    if (textPx() >= 9) return;
    const first = boxOf(names.slice(0, 1));
    readableAt({x: first.x + first.w / 2, y: first.y + first.h / 2});
  }
  // the median on-screen font size of the nodes' text (a sample of up to 60), in px: Graphviz's
  // font-size in drawing units times the camera's scale (computed from attributes, not read from
  // the layout, which may lag behind or use a fallback font's metrics before the font is ready)
  function textPx() {
    if (!size || !vb) return 0;
    const ts = [...P.svg.querySelectorAll('g.node text[font-size]')];
    const step = Math.max(1, Math.floor(ts.length / 60));
    const hs = [];
    for (let k = 0; k < ts.length; k += step) { const h = parseFloat(ts[k].getAttribute('font-size')); if (h > 0) hs.push(h); }
    hs.sort((a, b) => a - b);
    const root = P.svg.querySelector('g.graph');
    const m = root && root.transform.baseVal.consolidate();
    const unit = m ? Math.hypot(m.matrix.a, m.matrix.b) : 1;
    return hs.length ? hs[Math.floor(hs.length / 2)] * unit * Math.min(size.w / vb.w, size.h / vb.h) : 0;
  }
  // zoom in (never out) until the font is READABLE px, centred on p (viewBox coordinates)
  function readableAt(p) {
    const h = textPx();
    if (!h || h >= READABLE - 0.5) return;
    const f = h / READABLE;
    const w = vb.w * f, hh = vb.h * f;
    // centred on p, but not past the drawing's edges (no empty half screen around an end node)
    const clamp = (c, lo, len, span) => span >= len ? lo + len / 2 - span / 2 : Math.min(Math.max(c - span / 2, lo), lo + len - span);
    vb = {x: clamp(p.x, vb0.x, vb0.w, w), y: clamp(p.y, vb0.y, vb0.h, hh), w, h: hh};
    apply();
  }
  // where to look first: the selection, the node view's centre, the newest position's loss, the matrix,
  // else the view's last node (its output)
  function startNames() {
    const view = P.view, state = P.state;
    const ns = view.nodes, keys = Object.keys(ns);
    const byId = (id) => keys.filter((k) => ns[k].k === 's' && String(ns[k].id) === String(id));
    if (state.sel && byId(state.sel).length) return byId(state.sel);
    const centre = view.crumbs.find((c) => c.level === 'node');
    if (centre && byId(centre.to.node).length) return byId(centre.to.node);
    const pos = (k) => Number((/^pos(\d+)\/loss$/.exec(ns[k].path || '') || [])[1]);
    const losses = keys.filter((k) => isFinite(pos(k))).sort((a, b) => pos(a) - pos(b));
    if (losses.length) return losses.slice(-1);          // the newest position's loss
    const loss = keys.filter((k) => ns[k].path === 'loss/loss');
    if (loss.length) return loss;
    const m = keys.filter((k) => ns[k].k === 'm');
    if (m.length) return m;
    const inner = keys.filter((k) => ns[k].k !== 'r' && ns[k].side !== 'input');
    return inner.slice(-1);
  }
  // a fresh view: fit, and when its text is too small to read there, zoom in on where to look first
  function home() {
    fit();
    const b = boxOf(startNames());
    readableAt(b ? {x: b.x + b.w / 2, y: b.y + b.h / 2} : {x: vb.x + vb.w / 2, y: vb.y + vb.h / 2});
  }
  // "fit this block" (z): the nodes of what the user opened or picked, in this order: the selection's
  // group (its scope; a scope of one node widens to its parent), the block a click opened (focus),
  // the newest expansion, the search matches; none of these: the whole view
  function blockNames() {
    const view = P.view, state = P.state;
    const ns = view.nodes, keys = Object.keys(ns).filter((k) => ns[k].k !== 'r');
    const under = (p) => keys.filter((k) => ns[k].path && (ns[k].path === p || ns[k].path.startsWith(p + '/')));
    const sel = state.sel && keys.find((k) => ns[k].k === 's' && String(ns[k].id) === state.sel);
    if (sel && ns[sel].path) {
      const parts = ns[sel].path.split('/');
      for (let n = parts.length; n > 0; n--) {
        const inside = under(parts.slice(0, n).join('/'));
        if (inside.length > 1 || n === 1) return inside;
      }
    }
    if (state.focus) { const inside = under(state.focus); if (inside.length) return inside; }
    const opened = (state.expand || []).slice(-1)[0];
    if (opened) { const inside = keys.filter((k) => ns[k].exp === opened); if (inside.length) return inside; }
    return view.highlight.slice();
  }
  function fitBlock() {
    if (!P.svg || !P.view) return;
    const c = boxOf(blockNames());
    if (!c) { fit(); return; }
    const pad = Math.max(12, 0.04 * Math.max(c.w, c.h));      // a margin, in drawing units
    fitBox({x: c.x - pad, y: c.y - pad, w: c.w + 2 * pad, h: c.h + 2 * pad}, 1.6);
  }
  // the canvas changed size (window, side panel): keep the scale and the centre
  function reframe() {
    if (!vb || !P.svg) return;
    const r = $('#canvas').getBoundingClientRect();
    if (!size || !r.width || !r.height) { fit(); return; }
    const s = Math.min(size.w / vb.w, size.h / vb.h);      // px per unit before the change
    const cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2;
    vb = {x: cx - r.width / s / 2, y: cy - r.height / s / 2, w: r.width / s, h: r.height / s};
    size = {w: r.width, h: r.height};
    apply();
  }
  function zoom(factor, cx, cy) {
    if (!P.svg) return;
    const r = P.svg.getBoundingClientRect();
    if (cx === undefined) { cx = r.left + r.width / 2; cy = r.top + r.height / 2; }
    const ctm = P.svg.getScreenCTM();
    if (!ctm) return;
    const p = new DOMPoint(cx, cy).matrixTransform(ctm.inverse());
    const w = vb.w * factor;
    if (w < 20 || w > Math.max(vb0.w, vb0.h) * 20) return;
    vb = {x: p.x - (p.x - vb.x) * factor, y: p.y - (p.y - vb.y) * factor, w, h: vb.h * factor};
    apply();
  }
  function pan(dxPx, dyPx) {
    if (!P.svg) return;
    const ctm = P.svg.getScreenCTM();
    const s = ctm ? 1 / ctm.a : 1;
    vb.x -= dxPx * s; vb.y -= dyPx * s;
    apply();
  }
  // outline these nodes for a moment, and bring them into view
  function flash(names) {
    const gs = names.map((nm) => P.svg.querySelector(`g.node[data-name="${CSS.escape(nm)}"]`)).filter(Boolean);
    for (const g of gs) g.classList.add('flash');
    setTimeout(() => gs.forEach((g) => g.classList.remove('flash')), 1500);
    if (gs.length) focusOn(names);
  }
  const canvas = $('#canvas');
  canvas.addEventListener('wheel', (e) => {
    // in a notebook cell the wheel scrolls the notebook until the explorer is clicked (has focus)
    if (window.MicrogptTransport.hosted && !document.hasFocus()) return;
    e.preventDefault();
    zoom(Math.exp(e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), e.clientX, e.clientY);
  }, {passive: false});
  // a drag pans; the click that ends a drag is not a click on the graph (P.dragged: input.js)
  let drag = null;
  P.dragged = false;
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || e.target.closest('#minimap')) return;
    drag = {x: e.clientX, y: e.clientY, id: e.pointerId};
    P.dragged = false;
  });
  window.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!P.dragged && Math.hypot(dx, dy) < 4) return;
    if (!P.dragged) { P.dragged = true; canvas.classList.add('dragging'); }
    pan(dx, dy);
    drag.x = e.clientX; drag.y = e.clientY;
  });
  window.addEventListener('pointerup', () => { drag = null; canvas.classList.remove('dragging'); });
  new ResizeObserver(reframe).observe($('#canvas'));    // window, side panel, a bar that wraps

  // -- the minimap: the whole drawing, small, with the part on screen as a rectangle ------------
  // Drawn on a <canvas> from the SVG already on the page (clusters as outlines, nodes as their fill
  // colour): no second parse of the SVG text, and after the view's first paint (an idle moment).
  const MINI = {w: 220, h: 150, share: 0.3};   // px at most, and at most 30% of the canvas (a narrow cell)
  let miniJob = null;
  function drawMinimap() {
    const box = $('#minimap');
    const c = $('#canvas');
    const k = Math.min(Math.min(MINI.w, MINI.share * c.clientWidth) / vb0.w, Math.min(MINI.h, MINI.share * c.clientHeight) / vb0.h);
    const W = Math.max(8, Math.round(vb0.w * k)), H = Math.max(8, Math.round(vb0.h * k));
    box.style.width = `${W}px`;
    box.style.height = `${H}px`;
    const cv = $('#minimap canvas');
    const ctx = cv.getContext('2d');
    ctx.clearRect(0, 0, cv.width, cv.height);
    const mine = P.svg;
    if (miniJob) (window.cancelIdleCallback || clearTimeout)(miniJob);
    const paint = () => {
      miniJob = null;
      const svg = P.svg;
      if (svg !== mine) return;
      const dpr = window.devicePixelRatio || 1;
      cv.width = Math.round(W * dpr); cv.height = Math.round(H * dpr);
      const root = svg.querySelector('g.graph');
      const m = root && root.transform.baseVal.consolidate();
      const M = m ? m.matrix : new DOMMatrix();
      ctx.setTransform(dpr * W / vb0.w, 0, 0, dpr * H / vb0.h, -dpr * W / vb0.w * vb0.x, -dpr * H / vb0.h * vb0.y);
      const rect = (g) => {
        const b = g.getBBox();
        const p = new DOMPoint(b.x, b.y).matrixTransform(M);
        return [p.x, p.y, b.width * M.a, b.height * M.d];
      };
      ctx.lineWidth = vb0.w / W;
      ctx.strokeStyle = '#bbb';
      for (const g of svg.querySelectorAll('g.cluster')) ctx.strokeRect(...rect(g));
      for (const g of svg.querySelectorAll('g.node')) {
        const shape = g.querySelector('polygon, path, ellipse');
        const fill = shape && shape.getAttribute('fill');
        ctx.fillStyle = fill && fill !== 'none' ? fill : '#999';
        ctx.fillRect(...rect(g));
      }
    };
    miniJob = window.requestIdleCallback ? requestIdleCallback(paint, {timeout: 300}) : setTimeout(paint, 50);
  }
  let miniOff = false, miniDrag = false;
  function moveMinimap() {
    const box = $('#minimap');
    if (!vb0 || !vb) return;
    // shown only when much of the drawing is off screen (less than 60% of it in view), unless off (m)
    const seen = Math.max(0, Math.min(vb.x + vb.w, vb0.x + vb0.w) - Math.max(vb.x, vb0.x)) *
      Math.max(0, Math.min(vb.y + vb.h, vb0.y + vb0.h) - Math.max(vb.y, vb0.y)) / (vb0.w * vb0.h);
    box.hidden = seen >= 0.6 || miniOff;
    const W = parseFloat(box.style.width), H = parseFloat(box.style.height);
    const x0 = Math.max(0, (vb.x - vb0.x) / vb0.w), y0 = Math.max(0, (vb.y - vb0.y) / vb0.h);
    const x1 = Math.min(1, (vb.x + vb.w - vb0.x) / vb0.w), y1 = Math.min(1, (vb.y + vb.h - vb0.y) / vb0.h);
    const r = $('#minimap .vp').style;
    r.left = `${x0 * W}px`; r.top = `${y0 * H}px`;
    r.width = `${Math.max(2, (x1 - x0) * W)}px`; r.height = `${Math.max(2, (y1 - y0) * H)}px`;
  }
  function toggleMinimap() { miniOff = !miniOff; moveMinimap(); }
  function miniGo(e) {              // centre the camera on the minimap's point under the pointer
    const r = $('#minimap').getBoundingClientRect();
    const fx = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    const fy = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
    vb = Object.assign({}, vb, {x: vb0.x + fx * vb0.w - vb.w / 2, y: vb0.y + fy * vb0.h - vb.h / 2});
    apply();
  }
  $('#minimap').addEventListener('pointerdown', (e) => {
    e.stopPropagation();
    e.preventDefault();
    miniDrag = true;
    $('#minimap').setPointerCapture(e.pointerId);
    miniGo(e);
  });
  $('#minimap').addEventListener('pointermove', (e) => { if (miniDrag) miniGo(e); });
  $('#minimap').addEventListener('pointerup', () => { miniDrag = false; });
  $('#minimap').addEventListener('click', (e) => e.stopPropagation());

  $('#fit').addEventListener('click', fit);
  $('#fitblock').addEventListener('click', fitBlock);
  $('#zoomin').addEventListener('click', () => zoom(1 / 1.25));
  $('#zoomout').addEventListener('click', () => zoom(1.25));

  Object.assign(P, {newDrawing, fit, fitBlock, focusOn, home, reframe, zoom, pan, flash, drawMinimap, toggleMinimap});
})(window.explorer.page);
