/* microgpt-graph explorer: the camera. Pan and zoom change the SVG's viewBox (nothing is laid out
 * again: the shared camera, web/static/viewbox.js, MicrogptCamera); a fresh view opens readable at
 * where to look first; z fits the opened block; the step-through's frames are followed (P.follow);
 * the minimap shows the whole drawing when much of it is off screen. A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$;
  const READABLE = 11;               // px: the font size a fresh view opens at (when fit is smaller)
  const PRESENT_PX = 16.5;           // px: presentation mode's smallest node text (P.presenting: present.js)
  const FOLLOW_PX = 7;               // px: following a frame zooms out no further (unless the user did)
  let cam = null;                    // the camera of the SVG on screen

  // the camera buttons sit over the canvas's top edge (hidden in presentation mode)
  const covered = () => { const c = $('#camera'); return c && c.offsetParent ? c.offsetHeight + 6 : 0; };

  // the canvas's size and its covered top, measured before a new drawing goes in (holdCanvas(true):
  // its bars drawn, the old drawing out) and used until the camera has framed it (holdCanvas(false)):
  // read afterwards, they would make the browser lay the new drawing out then, and again after the
  // camera moved (a big view: tens of ms each); so it is laid out once, where the camera opens
  let held = null;
  function holdCanvas(on) {
    held = null;
    if (on) held = Object.assign(canvasSize(), {top: covered()});
  }
  // the canvas's size (px): the one held while a new drawing is framed, else measured now
  function canvasSize() {
    if (held) return held;
    const r = $('#canvas').getBoundingClientRect();
    return {w: r.width, h: r.height};
  }
  // a new SVG on screen: its camera
  function newDrawing() {
    if (cam) cam.stop();
    cam = window.MicrogptCamera.attach(P.svg, $('#canvas'), {top: () => (held ? held.top : covered()), size: () => held,
                                                            onchange: moveMinimap});
    P.cam = cam;
  }

  function fitBox(b, maxScale) { if (cam) cam.fitBox(b, maxScale); }
  function fit() { if (cam) cam.fitBox(cam.whole(), 1.6); }
  // the box of these nodes in viewBox coordinates (null: none drawn)
  function nodeEls(names) {
    return names.map((name) => P.svg.querySelector(`g.node[data-name="${CSS.escape(name)}"]`)).filter(Boolean);
  }
  function boxOf(names) { return window.MicrogptCamera.boxOf(P.svg, nodeEls(names)); }
  function focusOn(names) {
    const c = boxOf(names);
    if (!c) { home(); return; }
    const b = {x: c.x - 60, y: c.y - 60, w: c.w + 120, h: c.h + 120};
    const whole = cam.whole();
    // never zoom out past the whole picture nor in past 1.6x
    if (b.w >= whole.w && b.h >= whole.h) fit(); else fitBox(b, 1.6);
    // many matches spread out, their text too small to read: zoom in on the first one;
    // smaller but readable, they stay all on screen
    if (textPx() >= Math.min(9, readable())) return;
    const first = boxOf(names.slice(0, 1));
    readableAt({x: first.x + first.w / 2, y: first.y + first.h / 2});
  }
  // the px a fresh view opens at: 11, or presentation mode's 16.5
  function readable() { return P.presenting && P.presenting() ? PRESENT_PX : READABLE; }
  // the node texts' font sizes in drawing units: their median (a sample of up to 60) or the smallest
  // (computed from attributes, not read from the layout, which may lag behind or use a fallback
  // font's metrics before the font is ready)
  function fontUnits(smallest) {
    const ts = [...P.svg.querySelectorAll('g.node text[font-size]')];
    const step = smallest ? 1 : Math.max(1, Math.floor(ts.length / 60));
    const hs = [];
    for (let k = 0; k < ts.length; k += step) { const h = parseFloat(ts[k].getAttribute('font-size')); if (h > 0) hs.push(h); }
    hs.sort((a, b) => a - b);
    const root = P.svg.querySelector('g.graph');
    const m = root && root.transform.baseVal.consolidate();
    const unit = m ? Math.hypot(m.matrix.a, m.matrix.b) : 1;
    return hs.length ? (smallest ? hs[0] : hs[Math.floor(hs.length / 2)]) * unit : 0;
  }
  function textPx() { return cam ? fontUnits(false) * cam.scale() : 0; }
  // the smallest scale (px per unit) the camera may take: presentation mode keeps every node text,
  // even a running sum shrunk to fit its field (P.textShrink: the step-through's frames), at 16 px
  function minScale() {
    if (!P.svg || !cam) return 0;
    const units = Math.min(fontUnits(true) || Infinity, fontUnits(false) * (P.textShrink ? P.textShrink() : 1));
    if (!isFinite(units) || units <= 0) return 0;
    if (P.presenting && P.presenting()) return PRESENT_PX / units;
    return Math.min(FOLLOW_PX / units, cam.prefer() || Infinity);     // the user's own zoom out stands
  }
  // zoom in (never out) until the font is readable, centred on p (viewBox coordinates)
  function readableAt(p) {
    const h = textPx();
    const want = P.presenting && P.presenting() ? Math.max(readable(), minScale() * fontUnits(false)) : READABLE;
    if (!h || h >= want - 0.5) return;
    const whole = cam.whole(), vb = cam.vb();
    const f = h / want;
    const w = vb.w * f, hh = vb.h * f;
    // centred on p, but not past the drawing's edges (no empty half screen around an end node)
    const clamp = (c, lo, len, span) => span >= len ? lo + len / 2 - span / 2 : Math.min(Math.max(c - span / 2, lo), lo + len - span);
    cam.set({x: clamp(p.x, whole.x, whole.w, w), y: clamp(p.y, whole.y, whole.h, hh), w, h: hh});
  }
  // where to look first: the step-through's current frame (P.stepNames), the selection, the node
  // view's centre, the newest position's loss, the matrix, else the view's last node (its output)
  function startNames() {
    const view = P.view, state = P.state;
    const stepping = P.stepNames ? P.stepNames() : null;
    if (stepping && stepping.length) return stepping;
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
  // a fresh view (and `1`): fit, and when its text is too small to read there, zoom in on where to
  // look first
  function home() {
    if (!cam) return;
    fit();
    const names = startNames();
    const b = names.length ? window.MicrogptCamera.boxOf(P.svg, names.map((n) => P.svg.querySelector(
      `g.node[data-name="${CSS.escape(n)}"], [id="node-${CSS.escape(n)}"]`))) : null;
    const vb = cam.vb();
    readableAt(b ? {x: b.x + b.w / 2, y: b.y + b.h / 2} : {x: vb.x + vb.w / 2, y: vb.y + vb.h / 2});
  }
  // the step-through's frame: its lit node in view, its lit edges and their other ends where the
  // scale allows (viewbox.js: follow), never below presentation mode's 16 px
  function follow(boxes, animate) {
    if (!cam || !boxes || !boxes.must) return;
    cam.follow(boxes.must, boxes.want, {minScale: minScale(), animate});
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
  // the canvas changed size (window, side panel, presentation mode): keep the scale and the centre
  function reframe() { if (cam) cam.reframe(); }
  function zoom(factor, cx, cy) { if (cam) cam.zoomAt(factor, cx, cy); }
  function pan(dxPx, dyPx) { if (cam) cam.pan(dxPx, dyPx); }
  // outline these nodes for a moment, and bring them into view
  function flash(names) {
    const gs = nodeEls(names);
    for (const g of gs) g.classList.add('flash');
    setTimeout(() => gs.forEach((g) => g.classList.remove('flash')), 1500);
    if (gs.length) focusOn(names);
  }
  // a drag pans; the click that ends a drag is not a click on the graph (P.dragged: input.js)
  const pointer = window.MicrogptCamera.bindPointer($('#canvas'), () => cam, {
    skip: (e) => !!e.target.closest('#minimap'),
    // in a notebook cell the wheel scrolls the notebook until the explorer is clicked (has focus)
    skipWheel: () => window.MicrogptTransport.hosted && !document.hasFocus()});
  Object.defineProperty(P, 'dragged', {get: () => pointer.dragged, set: (v) => { pointer.dragged = v; }});
  new ResizeObserver(reframe).observe($('#canvas'));    // window, side panel, a bar that wraps

  // -- the minimap: the whole drawing, small, with the part on screen as a rectangle ------------
  // Drawn on a <canvas> from the SVG already on the page (clusters as outlines, nodes as their fill
  // colour): no second parse of the SVG text, and after the view's first paint (an idle moment).
  // At most a quarter of the canvas's width and height (a narrow window or notebook cell keeps its graph).
  const MINI = {w: 220, h: 150};
  let miniJob = null;
  function miniSize(whole) {
    const r = canvasSize();
    const mw = Math.min(MINI.w, 0.25 * r.w || MINI.w), mh = Math.min(MINI.h, 0.25 * r.h || MINI.h);
    const k = Math.min(mw / whole.w, mh / whole.h);
    return {W: Math.max(8, Math.round(whole.w * k)), H: Math.max(8, Math.round(whole.h * k))};
  }
  function drawMinimap() {
    const box = $('#minimap');
    const vb0 = cam.whole();
    const {W, H} = miniSize(vb0);
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
        const b = window.MicrogptCamera.shapeBox(g);
        const p = new DOMPoint(b.x, b.y).matrixTransform(M);
        return [p.x, p.y, b.width * M.a, b.height * M.d];
      };
      ctx.lineWidth = vb0.w / W;
      ctx.strokeStyle = '#bbb';
      for (const g of svg.querySelectorAll('g.cluster')) ctx.strokeRect(...rect(g));
      for (const g of svg.querySelectorAll('g.node')) {
        const shape = g.querySelector('polygon, path, ellipse');
        const fill = g.dataset.mini || (shape && shape.getAttribute('fill'));    // (a painted heat-map row: heat.js)
        ctx.fillStyle = fill && fill !== 'none' ? fill : '#999';
        ctx.fillRect(...rect(g));
      }
    };
    miniJob = window.requestIdleCallback ? requestIdleCallback(paint, {timeout: 300}) : setTimeout(paint, 50);
  }
  let miniOff = false, miniDrag = false;
  function moveMinimap() {
    const box = $('#minimap');
    if (!cam) return;
    const vb0 = cam.whole(), vb = cam.vb();
    // shown only when much of the drawing is off screen (less than 60% of it in view), unless off (m)
    // or presenting
    const seen = Math.max(0, Math.min(vb.x + vb.w, vb0.x + vb0.w) - Math.max(vb.x, vb0.x)) *
      Math.max(0, Math.min(vb.y + vb.h, vb0.y + vb0.h) - Math.max(vb.y, vb0.y)) / (vb0.w * vb0.h);
    box.hidden = seen >= 0.6 || miniOff || !!(P.presenting && P.presenting());
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
    const vb0 = cam.whole(), vb = cam.vb();
    cam.set(Object.assign({}, vb, {x: vb0.x + fx * vb0.w - vb.w / 2, y: vb0.y + fy * vb0.h - vb.h / 2}));
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

  Object.assign(P, {holdCanvas, newDrawing, fit, fitBlock, focusOn, home, reframe, zoom, pan, flash, drawMinimap, toggleMinimap,
                    follow, minScale, moveMinimap});
})(window.explorer.page);
