/* microgpt-graph explorer: the page. Plain JS, no dependencies, no network beyond its own server.
 *
 * The server folds and lays out every view (the same pipeline as `render`); this page draws the
 * SVG it returns, pans/zooms by changing the SVG's viewBox, and keeps the whole view state in
 * the URL query (the server's state.py validates it), so reload, back/forward and shared links
 * reproduce the view.
 *
 * Hook for add-ons (the step-through toolbar of issue 13 goes into <div id="stepper">):
 *   window.explorer.svg          the <svg> element currently drawn
 *   window.explorer.state        the current view state {field: value} (see state.py)
 *   window.explorer.view         the last /api/view answer (nodes, stats, crumbs, ...)
 *   window.explorer.setState(p)  merge p into the state (null removes a field) and draw it
 *   window.explorer.on('view', fn)   fn(detail) after each new view is drawn;
 *                                    detail = {svg, state, view}; also a DOM event 'explorer:view'
 *   window.explorer.query(state) the URL query of a state (for your own API calls), e.g.
 *                                fetch('/api/frames?' + explorer.query(explorer.state) + '&mode=backward')
 *                                gives graphviz_export.frames of the drawn view; the SVG's node and edge
 *                                groups carry the ids it names (node-<name>, edge-<src>-<dst>: draw/ids.py).
 *   window.explorer.setUrlState(p)  merge p into the state and the URL (replaceState) WITHOUT drawing:
 *                                    for fields that do not change the drawing (frame, ov)
 *   The step-through (stepthrough.js) keeps `frame` and `mode` in the URL this way.
 *   Overlays (`ov` = grad | contrib) recolour nodes by CSS class from view.nodes[name].mag.
 *   Compare (`cmp` = ckpt:PATH | steps:N) draws the before/after differences (the server's diff).
 */
(function () {
  'use strict';
  const $ = (s) => document.querySelector(s);
  const LIST = ['expand'];
  const VIEW_FIELDS = ['doc', 'seed', 'ckpt', 'view', 'token', 'layer', 'head', 'param', 'node', 'function', 'line', 'level'];
  const READABLE = 11;               // px: the font size a fresh view opens at (when fit is smaller)
  const events = new EventTarget();
  const cache = new Map();           // query -> /api/view answer (the last 24)
  let state = {};                    // the current state, as in the URL
  let view = null;                   // the last /api/view answer
  let info = null;                   // /api/info of the current recording
  let svg = null, vb0 = null, vb = null;
  let size = null;                   // the canvas size (px) vb was set for
  let loading = null;                // AbortController of the running load
  let lastGood = '';                 // query of the view on screen
  let reveal = null;                 // scope path of the group just clicked open (focus on it once drawn)

  // -- state <-> query ------------------------------------------------------------------------
  function parseQuery(q) {
    const out = {};
    for (const [k, v] of new URLSearchParams(q)) {
      if (LIST.includes(k)) (out[k] = out[k] || []).push(v); else out[k] = v;
    }
    return out;
  }
  function query(s) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(s)) {
      if (v === null || v === undefined || v === '' || v === false) continue;
      if (Array.isArray(v)) { for (const x of v) p.append(k, x); continue; }
      p.append(k, v === true ? '1' : String(v));
    }
    return p.toString().replace(/%2F/g, '/').replace(/%5B/g, '[').replace(/%5D/g, ']').replace(/%3A/g, ':');
  }
  function setState(partial, opts) {
    const next = Object.assign({}, state);
    for (const [k, v] of Object.entries(partial)) {
      if (v === null || v === undefined || (Array.isArray(v) && !v.length)) delete next[k];
      else next[k] = Array.isArray(v) ? v.slice() : (v === true ? '1' : v === false ? '0' : String(v));
    }
    if (next.grads === '0') delete next.grads;
    // the block a click opened (focus) belongs to the view it was opened in
    if (!('focus' in partial) && VIEW_FIELDS.some((k) => k in partial && partial[k] !== state[k])) delete next.focus;
    return navigate(query(next), opts || {});
  }
  function setUrlState(partial) {
    for (const [k, v] of Object.entries(partial)) {
      if (v === null || v === undefined) delete state[k]; else state[k] = String(v);
    }
    history.replaceState(null, '', '?' + query(state));
    if ('ov' in partial) applyOverlay();
    if ('side' in partial) applySide();
  }
  function navigate(q, opts) {
    if (opts.replace || q === location.search.slice(1)) history.replaceState(null, '', '?' + q);
    else history.pushState(null, '', '?' + q);
    return load(q);
  }

  // -- loading and drawing ----------------------------------------------------------------------
  // the page cache's key: the query with its fields sorted (a list keeps its order), so the same
  // state reached by another route (fields set in another order) is the same entry
  function cacheKey(q) { const p = new URLSearchParams(q); p.sort(); return p.toString(); }
  async function load(q) {
    if (loading) loading.abort();
    const mine = loading = new AbortController();
    const busy = setTimeout(() => { $('#busy').hidden = false; }, 120);
    const t0 = performance.now();
    try {
      let v = cache.get(cacheKey(q));
      if (!v) {
        const r = await fetch('/api/view?' + q, {signal: mine.signal});
        v = await r.json();
        if (!r.ok) throw Object.assign(new Error(v.error || r.statusText), {status: r.status, body: v});
        cache.set(cacheKey(q), v);
        cache.set(cacheKey(v.url), v);       // the canonical URL too: a link or back/forward to it hits
        while (cache.size > 24) cache.delete(cache.keys().next().value);
      }
      if (mine !== loading) return;
      if (!info || info.key !== v.key) await loadInfo(q);
      draw(v, q, performance.now() - t0);
      hideMsg();
    } catch (e) {
      if (e.name === 'AbortError') return;
      reveal = null;
      showMsg(e.message);
      if (lastGood !== q) history.replaceState(null, '', '?' + lastGood);   // keep URL = what is drawn
      state = parseQuery(lastGood);
      syncControls();
    } finally {
      clearTimeout(busy);
      if (mine === loading) { $('#busy').hidden = true; loading = null; }
    }
  }
  async function loadInfo(q) {
    const s = parseQuery(q);
    const t = {};
    for (const k of ['doc', 'seed', 'ckpt']) if (s[k]) t[k] = s[k];
    const r = await fetch('/api/info?' + query(t));
    const body = await r.json();
    if (!r.ok) throw new Error(body.error);
    info = body;
    drawPositions();
  }

  function draw(v, q, ms) {
    // the same drawing as on screen (only the selection or the search changed): keep the SVG
    // element, its decorations and the camera; re-mark the nodes instead of parsing it again
    const reuse = !!(view && svg && v.svg === view.svg && frameState(v.url) === frameState(lastGood));
    const hlMoved = !view || v.highlight.join() !== view.highlight.join();
    view = v;
    lastGood = q;
    state = parseQuery(v.url);
    if (v.url !== q) history.replaceState(null, '', '?' + v.url);
    // the bars around the canvas first: their height decides the canvas size the camera is set for
    drawCrumbs();
    drawCompare();
    syncControls();
    const s = v.stats;
    $('#status').textContent = `${v.title} · level ${s.level}${s.auto ? ' (auto)' : ''} · ${s.nodes} nodes, ` +
      `${s.edges} edges · ${s.ops} ops in view, ${s.folded_ops} folded` +
      (v.hl_count ? ` · ${v.hl_count} search match${v.hl_count === 1 ? '' : 'es'}, ${v.highlight.length} ` +
        `node${v.highlight.length === 1 ? '' : 's'} outlined` : '') +
      ` · ${v.cached ? 'cached' : `built ${v.ms.build} ms + layout ${v.ms.render} ms`} · drawn in ${Math.round(ms)} ms`;
    applySide();
    if (reuse) {
      mark();
      if (hlMoved && v.highlight.length) focusOn(v.highlight);
    } else {
      const g = $('#graph');
      const text = v.svg.slice(v.svg.indexOf('<svg'));
      g.innerHTML = text;
      svg = g.querySelector('svg');
      const box = svg.viewBox.baseVal;
      vb0 = {x: box.x, y: box.y, w: box.width, h: box.height};
      svg.setAttribute('width', '100%');
      svg.setAttribute('height', '100%');
      svg.removeAttribute('style');
      decorate();
      drawMinimap();
      const opened = (state.expand || []).slice(-1)[0];
      const inFrame = opened ? Object.keys(v.nodes).filter((k) => v.nodes[k].exp === opened) : [];
      // a group clicked open (level raised): the nodes inside it, as the new view names them
      // (or the block named by focus: a reload or a link shows it the same way)
      const into = reveal || state.focus;
      const inside = into ? Object.keys(v.nodes).filter((k) => v.nodes[k].k !== 'r' && v.nodes[k].path &&
        (v.nodes[k].path === into || v.nodes[k].path.startsWith(into + '/'))) : [];
      if (v.highlight.length) focusOn(v.highlight);
      else if (inFrame.length) focusOn(inFrame);      // an expansion: show what opened
      else if (inside.length) flash(inside);          // outlined for a moment, in view
      else home();                                    // readable, at where to look first
    }
    reveal = null;
    document.title = `${v.title} · microgpt-graph`;
    if (state.sel) showNode(state.sel); else clearPanel();
    const detail = {svg, state: Object.assign({}, state), view: v, reused: reuse};
    events.dispatchEvent(new CustomEvent('view', {detail}));
    document.dispatchEvent(new CustomEvent('explorer:view', {detail}));
  }

  function nodeName(g) { const t = g.querySelector('title'); return t ? t.textContent : null; }

  // once per drawn SVG: names, what is clickable, the expansion frames; then mark()
  function decorate() {
    for (const g of svg.querySelectorAll('g.node')) {
      const name = nodeName(g);
      const n = view.nodes[name] || view.nodes[(name.match(/^(m\d+)_[dg]\d+$/) || [])[1]];
      if (!n) continue;
      g.dataset.name = name;
      if (n.to || n.k === 's' || n.k === 'm' || n.k === 'r') g.classList.add('clickable');
      const a = g.querySelector('a');     // Graphviz's tooltip holder: keep it, but it must not navigate
      if (a) a.removeAttribute('href');
    }
    drawFrames();
    mark();
  }
  // the search outline (hl), the selected scalar (sel) and the overlay: classes only
  function mark() {
    const hl = new Set(view.highlight);
    for (const g of svg.querySelectorAll('g.node')) {
      const n = view.nodes[g.dataset.name];
      g.classList.toggle('hl', hl.has(g.dataset.name));
      g.classList.toggle('sel', !!(n && n.k === 's' && state.sel && String(n.id) === state.sel));
    }
    applyOverlay();
  }
  function frameState(q) {       // the step-through's fields of a query: a change there redraws
    const s = parseQuery(q);
    return `${s.frame}|${s.mode}|${s.ov}`;
  }

  // -- overlays: recolour nodes by |grad| or |grad x data| (classes ov0..ov5, log scale) -------
  const OV_TEXT = {grad: '|grad|', contrib: '|grad × data|'};
  function applyOverlay() {
    if (!svg || !view) return;
    const ov = state.ov;
    const k = ov === 'contrib' ? 1 : 0;
    svg.classList.toggle('overlay', !!ov);
    const mags = {};
    let top = 0;
    for (const g of svg.querySelectorAll('g.node')) {
      const n = view.nodes[g.dataset.name];
      const m = n && n.mag ? Number(n.mag[k]) : NaN;
      if (isFinite(m)) { mags[g.dataset.name] = m; top = Math.max(top, m); }
    }
    for (const g of svg.querySelectorAll('g.node')) {
      for (let j = 0; j < 6; j++) g.classList.remove('ov' + j);
      if (!ov || !(g.dataset.name in mags)) continue;
      const m = mags[g.dataset.name];
      // six bands of a log scale: the largest in view, then each a factor 10 down; 0 is its own
      const band = m <= 0 || top <= 0 ? 0 : Math.max(1, 5 - Math.floor(Math.log10(top / m)));
      g.classList.add('ov' + band);
    }
    const box = $('#ovlegend');
    box.hidden = !ov;
    if (ov) {
      box.innerHTML = `<b>${OV_TEXT[ov]}</b> of each node (largest inside a group)<br>` +
        [5, 4, 3, 2, 1].map((b) => `<span class="sw ov${b}"></span>${b === 5 ? '≤ ' + window.MicrogptFormat.fmt(top) : '÷' + (10 ** (5 - b)) + (b === 1 ? ' and less' : '')}`).join(' ') +
        ' <span class="sw ov0"></span>0';
    }
    $('#overlay').value = ov || '';
  }

  function drawFrames() {
    const root = svg.querySelector('g.graph');
    if (!root) return;
    const by = {};
    for (const g of svg.querySelectorAll('g.node')) {
      const n = view.nodes[nodeName(g)];
      if (n && n.exp) (by[n.exp] = by[n.exp] || []).push(g);
    }
    const NS = 'http://www.w3.org/2000/svg';
    for (const [pat, gs] of Object.entries(by)) {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const g of gs) {
        const b = g.getBBox();
        x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y); x1 = Math.max(x1, b.x + b.width); y1 = Math.max(y1, b.y + b.height);
      }
      const f = document.createElementNS(NS, 'g');
      f.setAttribute('class', 'frame');
      f.dataset.pattern = pat;
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', x0 - 8); r.setAttribute('y', y0 - 20);
      r.setAttribute('width', x1 - x0 + 16); r.setAttribute('height', y1 - y0 + 28); r.setAttribute('rx', 6);
      const t = document.createElementNS(NS, 'text');
      t.setAttribute('x', x0 - 4); t.setAttribute('y', y0 - 8);
      t.textContent = `⊟ ${pat}  (click the frame to fold back)`;
      const tip = document.createElementNS(NS, 'title');
      tip.textContent = `expanded to scalars: ${pat}; click to fold it back`;
      f.append(tip, r, t);
      root.insertBefore(f, root.querySelector('g.node, g.edge'));   // over the clusters, under the nodes
    }
  }

  // -- pan and zoom on the viewBox -------------------------------------------------------------
  function apply() {
    if (!svg) return;
    svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
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
    const root = svg.querySelector('g.graph');
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const name of names) {
      const g = svg.querySelector(`g.node[data-name="${CSS.escape(name)}"]`);
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
    const ts = [...svg.querySelectorAll('g.node text[font-size]')];
    const step = Math.max(1, Math.floor(ts.length / 60));
    const hs = [];
    for (let k = 0; k < ts.length; k += step) { const h = parseFloat(ts[k].getAttribute('font-size')); if (h > 0) hs.push(h); }
    hs.sort((a, b) => a - b);
    const root = svg.querySelector('g.graph');
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
    if (!svg || !view) return;
    const c = boxOf(blockNames());
    if (!c) { fit(); return; }
    const pad = Math.max(12, 0.04 * Math.max(c.w, c.h));      // a margin, in drawing units
    fitBox({x: c.x - pad, y: c.y - pad, w: c.w + 2 * pad, h: c.h + 2 * pad}, 1.6);
  }
  // the canvas changed size (window, side panel): keep the scale and the centre
  function reframe() {
    if (!vb || !svg) return;
    const r = $('#canvas').getBoundingClientRect();
    if (!size || !r.width || !r.height) { fit(); return; }
    const s = Math.min(size.w / vb.w, size.h / vb.h);      // px per unit before the change
    const cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2;
    vb = {x: cx - r.width / s / 2, y: cy - r.height / s / 2, w: r.width / s, h: r.height / s};
    size = {w: r.width, h: r.height};
    apply();
  }
  function zoom(factor, cx, cy) {
    if (!svg) return;
    const r = svg.getBoundingClientRect();
    if (cx === undefined) { cx = r.left + r.width / 2; cy = r.top + r.height / 2; }
    const ctm = svg.getScreenCTM();
    if (!ctm) return;
    const p = new DOMPoint(cx, cy).matrixTransform(ctm.inverse());
    const w = vb.w * factor;
    if (w < 20 || w > Math.max(vb0.w, vb0.h) * 20) return;
    vb = {x: p.x - (p.x - vb.x) * factor, y: p.y - (p.y - vb.y) * factor, w, h: vb.h * factor};
    apply();
  }
  function pan(dxPx, dyPx) {
    if (!svg) return;
    const ctm = svg.getScreenCTM();
    const s = ctm ? 1 / ctm.a : 1;
    vb.x -= dxPx * s; vb.y -= dyPx * s;
    apply();
  }
  const canvas = $('#canvas');
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    zoom(Math.exp(e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), e.clientX, e.clientY);
  }, {passive: false});
  let drag = null, dragged = false;
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || e.target.closest('#minimap')) return;
    drag = {x: e.clientX, y: e.clientY, id: e.pointerId};
    dragged = false;
  });
  window.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    if (!dragged) { dragged = true; canvas.classList.add('dragging'); }
    pan(dx, dy);
    drag.x = e.clientX; drag.y = e.clientY;
  });
  window.addEventListener('pointerup', () => { drag = null; canvas.classList.remove('dragging'); });
  new ResizeObserver(reframe).observe($('#canvas'));    // window, side panel, a bar that wraps

  // -- the minimap: the whole drawing, small, with the part on screen as a rectangle ------------
  // Drawn on a <canvas> from the SVG already on the page (clusters as outlines, nodes as their fill
  // colour): no second parse of the SVG text, and after the view's first paint (an idle moment).
  const MINI = {w: 220, h: 150};
  let miniJob = null;
  function drawMinimap() {
    const box = $('#minimap');
    const k = Math.min(MINI.w / vb0.w, MINI.h / vb0.h);
    const W = Math.max(8, Math.round(vb0.w * k)), H = Math.max(8, Math.round(vb0.h * k));
    box.style.width = `${W}px`;
    box.style.height = `${H}px`;
    const cv = $('#minimap canvas');
    const ctx = cv.getContext('2d');
    ctx.clearRect(0, 0, cv.width, cv.height);
    const mine = svg;
    if (miniJob) (window.cancelIdleCallback || clearTimeout)(miniJob);
    const paint = () => {
      miniJob = null;
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
  let miniOff = false, miniDrag = false;
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

  // -- the side panel folds away (p), giving the graph its room; kept in the URL (side=hide) --------
  function applySide() {
    const hide = state.side === 'hide';
    if (document.body.classList.contains('side-hidden') === hide) return;
    document.body.classList.toggle('side-hidden', hide);
    $('#sidebtn').textContent = hide ? '◂ Panel' : 'Panel ▸';
    $('#sidebtn').title = hide ? 'Show the side panel (p)' : 'Hide the side panel (p)';
    reframe();
  }
  function toggleSide() { setUrlState({side: state.side === 'hide' ? null : 'hide'}); }
  $('#sidebtn').addEventListener('click', toggleSide);

  // -- clicks on the graph -------------------------------------------------------------------------
  canvas.addEventListener('click', (e) => {
    if (dragged) { dragged = false; return; }
    const frame = e.target.closest('g.frame');
    if (frame) {
      setState({expand: (state.expand || []).filter((p) => p !== frame.dataset.pattern)});
      return;
    }
    const g = e.target.closest('g.node');
    if (!g && view && state.sel && !e.target.closest('g.edge')) {   // the background: drop the selection
      setState({sel: null}, {replace: true});
      return;
    }
    if (!g || !view) return;
    const name = g.dataset.name || nodeName(g);
    const heat = name.match(/^(m\d+)_([dg])(\d+)$/);
    if (heat) {
      const m = view.nodes[heat[1]];
      const b = g.getBBox();
      const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(g.getScreenCTM().inverse());
      const col = Math.max(0, Math.min(m.shape[1] - 1, Math.floor((p.x - b.x) / b.width * m.shape[1])));
      setState({view: 'param', param: `${m.param}[${heat[3]}][${col}]`, level: 'auto', expand: null, sel: null, hl: null, depth: null});
      return;
    }
    const n = view.nodes[name];
    if (!n) return;
    if (n.k === 's') { setState({sel: n.id}, {replace: true}); return; }
    if (n.k === 'r') { flash(n.refers); return; }
    if (n.k === 'g') showGroup(name, n);
    if (n.to) {
      reveal = n.path || null;        // after the redraw, show what this group became (not the whole view)
      setState(Object.assign({sel: null, hl: null}, n.to));
    }
  });
  canvas.addEventListener('dblclick', (e) => {
    const g = e.target.closest('g.node');
    if (!g || !view) return;
    const n = view.nodes[g.dataset.name];
    if (n && n.k === 's') setState({view: 'node', node: n.id, depth: 2, level: 'auto', expand: null, sel: n.id, hl: null});
  });
  function flash(names) {
    const gs = names.map((nm) => svg.querySelector(`g.node[data-name="${CSS.escape(nm)}"]`)).filter(Boolean);
    for (const g of gs) g.classList.add('flash');
    setTimeout(() => gs.forEach((g) => g.classList.remove('flash')), 1500);
    if (gs.length) focusOn(names);
  }

  // -- side panel --------------------------------------------------------------------------------
  const esc = window.MicrogptFormat.esc;     // the pages' one escape and number format (format.js)
  function clearPanel() {
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
  async function showNode(id) {
    let d;
    try {
      const t = {};
      for (const k of ['doc', 'seed', 'ckpt', 'cmp']) if (state[k]) t[k] = state[k];
      t.id = id;
      const r = await fetch('/api/node?' + query(t));
      d = await r.json();
      if (!r.ok) throw new Error(d.error);
    } catch (e) { showMsg(e.message); return; }
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
        h += `<tr><td><a data-sel="${x.id}">${esc(x.label)}</a></td><td class="num" data-k="local">${esc(x.local)}</td>` +
             `<td class="num" data-k="contrib">${esc(x.contrib)}</td></tr>`;
      }
      h += '</table>';
    }
    h += `<h4>uses: grad = Σ contributions (${d.n_uses})</h4>`;
    if (d.is_loss) h += '<p>The loss: backward starts here with grad 1.</p>';
    if (d.uses.length) {
      h += `<table id="uses"><tr><td>used by</td><td class="num">local</td><td class="num">contribution</td></tr>`;
      for (const u of d.uses) {
        h += `<tr><td><a data-sel="${u.id}" title="${esc(u.path)}">${esc(u.label)}</a></td>` +
             `<td class="num" data-k="local">${esc(u.local)}</td><td class="num" data-k="contrib">${esc(u.contrib)}</td></tr>`;
      }
      if (d.n_uses > d.uses.length) h += `<tr><td colspan="3">… ${d.n_uses - d.uses.length} more</td></tr>`;
      h += `<tr class="sum"><td>sum</td><td></td><td class="num" data-k="sum">${esc(d.uses_sum)}</td></tr></table>` +
        `<p class="${d.sum_is_grad ? 'ok' : 'bad'}">${d.sum_is_grad ? '= grad, exactly' : '≠ grad'}</p>`;
    }
    h += `<p><a data-node="${d.id}">show its neighbourhood</a></p>`;
    $('#panel').innerHTML = h;
  }
  // a node named in the panel (an input, a use): hovering it outlines it in the graph, when drawn
  function peek(e, on) {
    const a = e.target.closest && e.target.closest('a[data-sel]');
    if (!a || !svg) return;
    const g = svg.querySelector(`g.node[data-name="n${CSS.escape(a.dataset.sel)}"]`);
    if (g) g.classList.toggle('peek', on);
  }
  $('#panel').addEventListener('mouseover', (e) => peek(e, true));
  $('#panel').addEventListener('mouseout', (e) => peek(e, false));
  $('#panel').addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (!a) return;
    if (a.dataset.sel) {
      const id = a.dataset.sel;
      const name = 'n' + id;
      if (view.nodes[name]) setState({sel: id}, {replace: true});
      else setState({view: 'node', node: id, depth: 2, level: 'auto', expand: null, sel: id, hl: null});
    } else if (a.dataset.node) {
      setState({view: 'node', node: a.dataset.node, depth: 2, level: 'auto', expand: null, sel: a.dataset.node, hl: null});
    }
  });

  // -- breadcrumbs, positions, tabs, controls -----------------------------------------------------
  function toState(s) { return parseQuery(query(Object.fromEntries(Object.entries(s).filter(([k, v]) => v !== null)))); }
  function drawCrumbs() {
    const c = $('#crumbs');
    c.innerHTML = '';
    view.crumbs.forEach((cr, k) => {
      if (k) c.insertAdjacentHTML('beforeend', ' <span class="sep">›</span> ');
      const last = k === view.crumbs.length - 1;
      const a = document.createElement(last ? 'span' : 'a');
      a.innerHTML = `<span class="lvl">${esc(cr.level)} </span>${esc(cr.label)}`;
      if (last) a.className = 'cur';
      a.dataset.k = k;
      a.addEventListener('click', () => goCrumb(k));
      c.append(a);
    });
    c.title = c.textContent;            // the line may cut a long trail short: the whole of it
  }
  function goCrumb(k) {
    const s = toState(view.crumbs[k].to);
    navigate(query(s), {});
  }
  function upOne() {
    if (state.expand && state.expand.length) { setState({expand: state.expand.slice(0, -1)}); return; }
    if (view && view.crumbs.length > 1) goCrumb(view.crumbs.length - 2);
  }
  function curPos() {
    if (!view) return null;
    const c = view.crumbs.find((x) => x.level === 'position');
    return c ? Number(c.to.token) : null;
  }
  function drawPositions() {
    const p = $('#positions');
    const sc = info.script;
    for (const b of document.querySelectorAll('#tabs button')) {
      const v = b.dataset.view;
      b.hidden = sc ? ['doc', 'token', 'layer', 'head'].includes(v) && !info.tokens.length : ['function', 'line'].includes(v);
    }
    $('#comparebtn').hidden = info.fixed;
    if (sc) {
      p.innerHTML = `<span class="lbl">your script <b>${esc(sc.file)}</b> · class ${esc(sc.class)} (${esc(sc.convention)} ` +
        `convention) · backward() call ${sc.step} · ${info.n_nodes} nodes · loss ${info.loss === null ? '?' : info.loss.toPrecision(6)}` +
        ` · ${sc.functions.length} functions, ${sc.lines.length} lines${info.tokens.length ? ' · positions:' : ''}</span>`;
    } else {
      // the document's name is in the crumbs and the doc field: here its loss, then its positions
      p.innerHTML = `<span class="lbl" title="the document '${esc(info.doc)}'${info.truncated ? ' (truncated)' : ''}: ` +
        `its loss and its positions">loss ${info.loss === null ? '?' : info.loss.toFixed(4)}` +
        `${info.truncated ? ' (truncated)' : ''} ·</span>`;
    }
    if (info.tokens.length) {
      const all = document.createElement('span');
      all.className = 'chip all';
      all.textContent = 'whole document';
      all.title = 'every position, block level';
      all.addEventListener('click', () => setState({view: 'doc', token: null, layer: null, head: null, param: null, node: null,
        depth: null, dir: null, function: null, line: null, expand: null, level: null, sel: null, hl: null, frame: null}));
      p.append(all);
    }
    for (const t of info.tokens) {
      const c = document.createElement('span');
      c.className = 'chip';
      c.dataset.pos = t.pos;
      c.innerHTML = `${t.pos}: ${esc(t.char)}→${esc(t.target)}<small>${t.loss !== undefined ? t.loss.toFixed(2) : ''}</small>`;
      c.title = `position ${t.pos}: reads '${t.char}', should predict '${t.target}'; loss ${t.loss}`;
      c.addEventListener('click', () => setState({view: 'token', token: t.pos, level: null, expand: null, sel: null, hl: null,
                                                 layer: null, head: null, param: null, node: null, depth: null, dir: null}));
      p.append(c);
    }
    $('#doc').value = info.doc || '';
    $('#seed').value = info.seed === null ? '' : info.seed;
    $('#ckpt').value = info.ckpt || '';
    for (const el of ['#doc', '#seed', '#ckpt', '#recording button']) $(el).disabled = info.fixed;
    for (const a of document.querySelectorAll('#exportmenu a')) {
      a.classList.toggle('disabled', a.dataset.fmt === 'png' && !info.png);
      if (a.dataset.fmt === 'png' && !info.png) a.title = 'needs Graphviz dot installed';
    }
  }
  const opt = (v, t, sel) => `<option value="${esc(v)}"${String(sel) === String(v) ? ' selected' : ''}>${esc(t)}</option>`;
  function syncControls() {
    if (!info) return;
    const v = state.view || 'token';
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('on', b.dataset.view === v);
    const pos = curPos();
    for (const c of document.querySelectorAll('#positions .chip[data-pos]')) c.classList.toggle('on', Number(c.dataset.pos) === pos && v !== 'param' && v !== 'node');
    const whole = $('#positions .chip.all');
    if (whole) whole.classList.toggle('on', v === 'doc');
    const on = $('#positions .chip.on');          // the line is narrow: the chip of this view in sight
    if (on) on.scrollIntoView({block: 'nearest', inline: 'nearest'});
    const posSel = (allowAll) => `<label>position <select data-f="token">${allowAll ? opt('', 'all', state.token || '') : ''}` +
      info.tokens.map((t) => opt(t.pos, `${t.pos}: ${t.char}→${t.target}`, state.token !== undefined ? state.token : (allowAll ? '' : info.tokens.length - 1))).join('') + '</select></label>';
    const layerSel = `<label>layer <select data-f="layer">${info.layers.map((l) => opt(l, l, state.layer || 0)).join('')}</select></label>`;
    let h = '';
    const sc = info.script;
    if (v === 'function' && sc) {
      h += `<label>function <select data-f="function">${sc.functions.map((f) => opt(f, f + '()', state.function || '')).join('')}</select></label>`;
    } else if (v === 'line' && sc) {
      h += `<label>line <select data-f="line">${sc.lines.map((l) => opt(l.line, `${l.line}: ${l.code.slice(0, 60)}`, state.line || '')).join('')}</select></label>`;
    } else if (v === 'token') h += posSel(false);
    else if (v === 'layer') h += layerSel + posSel(true);
    else if (v === 'head') h += layerSel + `<label>head <select data-f="head">${info.heads.map((x) => opt(x, x, state.head || 0)).join('')}</select></label>` + posSel(true);
    else if (v === 'param') {
      const [name, r, c] = parseParam(state.param || '');
      h += `<label>matrix <select data-p="name">${Object.keys(info.params).map((n) => opt(n, `${n} ${info.params[n].join('×')}`, name)).join('')}</select></label>` +
        `<label>row <input data-p="row" size="3" value="${r}" placeholder="all"></label><label>col <input data-p="col" size="3" value="${c}" placeholder="all"></label>`;
    } else if (v === 'node') {
      h += `<label>node <input data-f="node" size="7" value="${esc(state.node || 'loss')}"></label>` +
        `<label>depth <input data-f="depth" size="2" value="${esc(state.depth || 2)}"></label>` +
        `<label>direction <select data-f="dir">${['both', 'ancestors', 'descendants'].map((d) => opt(d, d, state.dir || 'both')).join('')}</select></label>`;
    }
    h += `<label>level <select data-f="level">${info.levels.map((l) => opt(l, l, state.level || 'block')).join('')}</select></label>` +
      `<label title="label edges with local derivative and contribution"><input type="checkbox" data-f="grads"${state.grads === '1' ? ' checked' : ''}> edge grads</label>` +
      `<label title="largest view drawn (nodes / edges)">budget <input data-f="budget" size="4" value="${esc(state.budget || info.defaults.budget)}">` +
      `/<input data-f="ebudget" size="4" value="${esc(state.ebudget || info.defaults.ebudget)}"></label>`;
    $('#viewctl').innerHTML = h;
  }
  function parseParam(t) {
    const m = t.match(/^([\w.]+)(?:\[(\d+)\]\[(\d+)\])?$/);
    return m ? [m[1], m[2] || '', m[3] || ''] : [Object.keys(info.params)[0], '', ''];
  }
  $('#viewctl').addEventListener('change', (e) => {
    const el = e.target;
    if (el.dataset.p) {
      const name = $('#viewctl [data-p="name"]').value;
      const r = $('#viewctl [data-p="row"]').value.trim(), c = $('#viewctl [data-p="col"]').value.trim();
      setState({param: r !== '' && c !== '' ? `${name}[${r}][${c}]` : name, sel: null, hl: null, expand: null});
      return;
    }
    const f = el.dataset.f;
    const val = el.type === 'checkbox' ? (el.checked ? '1' : null) : (el.value.trim() || null);
    const p = {[f]: val, sel: null};
    if (f !== 'level' && f !== 'grads' && f !== 'budget' && f !== 'ebudget') p.expand = null;
    setState(p);
  });
  $('#tabs').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b || !info) return;
    const v = b.dataset.view, pos = curPos();
    const last = info.tokens.length ? info.tokens[info.tokens.length - 1].pos : 0;
    const base = {view: v, token: null, layer: null, head: null, param: null, node: null, depth: null, dir: null,
                  expand: null, hl: null, sel: null, level: 'auto'};   // another view: the old selection goes
    if (v === 'token') Object.assign(base, {token: pos === null ? last : pos, level: null});
    if (v === 'layer') Object.assign(base, {layer: state.layer || info.layers[0] || 0, token: pos});
    if (v === 'head') Object.assign(base, {layer: state.layer || info.layers[0] || 0, head: state.head || 0, token: pos === null ? last : pos});
    if (v === 'param') Object.assign(base, {param: state.param || `${Object.keys(info.params).find((n) => n.includes('attn_wq')) || Object.keys(info.params)[0]}[0][0]`});
    if (v === 'node') Object.assign(base, {node: state.sel || 'loss', depth: 2, sel: state.sel || null});
    if (v === 'doc') Object.assign(base, {level: null});
    Object.assign(base, {function: null, line: null});
    if (v === 'function') base.function = state.function || info.script.functions[0];
    if (v === 'line') base.line = state.line || (info.script.lines[0] || {}).line;
    setState(base);
  });

  // -- recording, search, export, help ---------------------------------------------------------------
  $('#recording').addEventListener('submit', (e) => {
    e.preventDefault();
    const doc = $('#doc').value.trim(), seed = $('#seed').value.trim(), ckpt = $('#ckpt').value.trim();
    setState({doc: doc || null, seed: ckpt ? null : (seed || null), ckpt: ckpt || null, view: null, token: null, layer: null,
              head: null, param: null, node: null, depth: null, dir: null, expand: null, level: null, sel: null, hl: null});
  });
  // search: suggestions as you type (debounced), then match rows; arrows move through the list,
  // Enter takes the marked row, a click too; the list stays until Esc or a click elsewhere
  let list = null;                   // {kind: 'sug'|'match', items, cur}
  let sugTimer = null, sugSeq = 0;
  function traceFields() {
    const t = {};
    for (const k of ['doc', 'seed', 'ckpt']) if (state[k]) t[k] = state[k];
    return t;
  }
  function hideResults() { $('#results').hidden = true; list = null; clearTimeout(sugTimer); sugSeq++; }
  function showList(kind, items, head) {
    const box = $('#results');
    list = {kind, items, cur: -1};
    box.innerHTML = (head ? `<div class="head">${head}</div>` : '') + items.map((m, k) => kind === 'sug' ?
      `<div class="row sug" data-i="${k}"><span class="txt">${esc(m.text)}</span><span class="hint">${esc(m.hint)}</span>` +
      `<span class="n" title="nodes it matches">${m.count === null || m.count === undefined ? '' : m.count}</span></div>` :
      `<div class="row match" data-i="${k}" title="${esc(m.hl)}"><span class="path">${esc(m.path)}</span>` +
      `<span class="lbl">${esc(m.label)}</span><span class="n">${m.count}</span></div>`).join('');
    box.hidden = !items.length && !head;
  }
  function markRow(k) {
    if (!list || !list.items.length) return;
    list.cur = (k + list.items.length) % list.items.length;
    for (const r of document.querySelectorAll('#results .row')) r.classList.toggle('cur', Number(r.dataset.i) === list.cur);
    const r = $(`#results .row[data-i="${list.cur}"]`);
    if (r) r.scrollIntoView({block: 'nearest'});
  }
  function takeRow(k) {
    const m = list.items[k];
    if (list.kind === 'sug') {
      $('#q').value = m.text;
      $('#q').focus();
      if (m.done) runSearch(m.text); else suggestNow();
      return;
    }
    markRow(k);
    for (const r of document.querySelectorAll('#results .row')) r.classList.toggle('went', Number(r.dataset.i) === k);
    navigate(m.url, {});
    $('#q').focus();
  }
  async function suggestNow() {
    const mine = ++sugSeq;
    const q = $('#q').value;
    try {
      const r = await fetch('/api/suggest?' + query(Object.assign(traceFields(), {q})));
      const d = await r.json();
      if (mine !== sugSeq) return;             // typed on, or searched meanwhile
      if (!r.ok) throw new Error(d.error);
      showList('sug', d.suggestions, '');
    } catch (err) {
      if (mine === sugSeq) showList('sug', [], `<span class="err">${esc(err.message)}</span>`);
    }
  }
  async function runSearch(q) {
    clearTimeout(sugTimer);
    const mine = ++sugSeq;
    const t = traceFields();
    for (const k of ['budget', 'ebudget']) if (state[k]) t[k] = state[k];
    t.q = q;
    try {
      const r = await fetch('/api/search?' + query(t));
      const d = await r.json();
      if (mine !== sugSeq) return;
      if (!r.ok) throw new Error(d.error);
      const more = d.scopes > d.matches.length ? ` (the first ${d.matches.length} listed)` : '';
      const s = (n, w) => `${n} ${w}${n === 1 ? '' : w.endsWith('h') ? 'es' : 's'}`;
      const what = d.unit === 'cell' ? `${s(d.count, 'cell')} of ${esc(d.matches[0].path)}: the matrix, then each cell` :
        d.unit === 'view' ? `${s(d.count, 'match')}, shown by ${s(d.scopes, 'view')}: its own, then wider` :
        `${s(d.count, 'match')} in ${s(d.scopes, d.unit)}`;
      showList('match', d.matches, `${what}${more} · <span class="hint">↑↓ Enter or click: show one · Esc: close</span>`);
      navigate(d.url, {});
    } catch (err) {
      if (mine === sugSeq) showList('match', [], `<span class="err">${esc(err.message)}</span>`);
    }
  }
  $('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = $('#q').value.trim();
    if (!q) { hideResults(); return; }
    if (list && list.cur >= 0) { takeRow(list.cur); return; }
    runSearch(q);
  });
  $('#q').addEventListener('input', () => {
    clearTimeout(sugTimer);
    sugSeq++;
    if (!$('#q').value) { hideResults(); return; }       // emptied (the field's ×, or Esc): nothing to suggest
    if (list) {                                           // a new query: Enter searches it, not the old list's row
      list.cur = -1;
      for (const r of document.querySelectorAll('#results .row.cur')) r.classList.remove('cur');
    }
    sugTimer = setTimeout(suggestNow, 150);
  });
  $('#q').addEventListener('focus', () => { if ($('#results').hidden && !$('#q').value) suggestNow(); });
  $('#q').addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      e.stopPropagation();
      if (!list || $('#results').hidden) { suggestNow(); return; }
      markRow(list.cur < 0 ? (e.key === 'ArrowDown' ? 0 : -1) : list.cur + (e.key === 'ArrowDown' ? 1 : -1));
    } else if (e.key === 'Escape' && !$('#results').hidden) {
      e.stopPropagation();
      e.preventDefault();              // a search field clears itself on Esc: keep the query, close the list
      hideResults();
    }
  });
  $('#results').addEventListener('click', (e) => {
    const r = e.target.closest('.row[data-i]');
    if (r && list) takeRow(Number(r.dataset.i));
  });
  $('#exportbtn').addEventListener('click', (e) => { e.stopPropagation(); $('#exportmenu').hidden = !$('#exportmenu').hidden; });
  document.addEventListener('click', (e) => {
    if (!e.target.closest('.dropdown')) { $('#exportmenu').hidden = true; $('#comparemenu').hidden = true; }
    if (!e.target.closest('#search') && !$('#results').hidden) hideResults();
  });
  $('#exportmenu').addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (!a) return;
    a.href = '/api/export?' + query(Object.assign({}, state, {fmt: a.dataset.fmt, sel: null, hl: null, frame: null}));
    setTimeout(() => { $('#exportmenu').hidden = true; }, 0);
  });
  $('#overlay').addEventListener('change', (e) => setUrlState({ov: e.target.value || null}));
  $('#comparebtn').addEventListener('click', (e) => { e.stopPropagation(); $('#comparemenu').hidden = !$('#comparemenu').hidden; });
  $('#comparemenu').addEventListener('submit', (e) => {
    e.preventDefault();
    const how = e.submitter ? e.submitter.dataset.how : 'steps';
    const val = (how === 'ckpt' ? $('#cmpckpt') : $('#cmpsteps')).value.trim();
    if (!val) return;
    $('#comparemenu').hidden = true;
    setState({cmp: `${how}:${val}`, frame: null, mode: null, sel: null});
  });
  function drawCompare() {
    const bar = $('#comparebar');
    const c = view && view.compare;
    bar.hidden = !c;
    if (!c) { bar.innerHTML = ''; return; }
    bar.innerHTML = `<span class="mg-phase mg-phase-compare">before / after</span> Δ = <b>${esc(c.labels[1])}</b> − <b>${esc(c.labels[0])}</b> ` +
      `on one layout, one colour scale · loss ${c.loss_before.toFixed(6)} → ${c.loss_after.toFixed(6)} ` +
      `(<b id="dloss">${c.loss_delta >= 0 ? '+' : ''}${c.loss_delta.toFixed(6)}</b>) <button id="leavecmp">leave compare</button>` +
      (c.labels[0] === 'run step 0' ? ' <span class="hint">(the reference training run: seed, shuffled names; its step-0 model is not this page\u2019s fresh model)</span>' : '');
    $('#leavecmp').addEventListener('click', () => setState({cmp: null, sel: null}));
  }
  $('#fit').addEventListener('click', fit);
  $('#fitblock').addEventListener('click', fitBlock);
  $('#zoomin').addEventListener('click', () => zoom(1 / 1.25));
  $('#zoomout').addEventListener('click', () => zoom(1.25));
  $('#helpbtn').addEventListener('click', () => { $('#help').hidden = !$('#help').hidden; });
  $('#help').addEventListener('click', () => { $('#help').hidden = true; });

  document.addEventListener('keydown', (e) => {
    const typing = e.target.closest('input, select, textarea');
    if (e.key === 'Escape') {
      if (!$('#help').hidden) { $('#help').hidden = true; return; }
      if (!$('#results').hidden) { hideResults(); return; }
      if (typing) { e.target.blur(); return; }
      if (state.sel) setState({sel: null}, {replace: true});
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const step = 80;
    const k = e.key;
    if (k === '?') $('#help').hidden = !$('#help').hidden;
    else if (k === '/') { e.preventDefault(); $('#q').focus(); $('#q').select(); }
    else if (k === 'f' || k === '0') fit();
    else if (k === 'z') fitBlock();
    else if (k === '1') home();
    else if (k === 'm') { miniOff = !miniOff; moveMinimap(); }
    else if (k === 'p') toggleSide();
    else if (k === '+' || k === '=') zoom(1 / 1.25);
    else if (k === '-' || k === '_') zoom(1.25);
    else if (k === 'o') setUrlState({ov: {'': 'grad', grad: 'contrib', contrib: null}[state.ov || '']});
    else if (k === 'ArrowLeft') pan(step, 0);
    else if (k === 'ArrowRight') pan(-step, 0);
    else if (k === 'ArrowUp') pan(0, step);
    else if (k === 'ArrowDown') pan(0, -step);
    else if (k === 'u' || k === 'Backspace') upOne();
    else if ((k === '[' || k === ']') && info) {
      const pos = curPos();
      const ps = info.tokens.map((t) => t.pos);
      const i = ps.indexOf(pos);
      const j = k === '[' ? Math.max(0, i - 1) : Math.min(ps.length - 1, i + 1);
      if (i >= 0 && j !== i) setState({token: ps[j], expand: null, sel: null, hl: null, view: ['layer', 'head'].includes(state.view) ? state.view : 'token'});
    } else return;
    e.preventDefault();
  });

  let msgTimer = null;
  function showMsg(text) {
    const m = $('#msg');
    m.textContent = text;
    m.hidden = false;
    clearTimeout(msgTimer);
    msgTimer = setTimeout(hideMsg, 9000);
  }
  function hideMsg() { $('#msg').hidden = true; }

  window.addEventListener('popstate', () => load(location.search.slice(1)));

  window.explorer = {
    get svg() { return svg; },
    get state() { return Object.assign({}, state); },
    get view() { return view; },
    setState,
    setUrlState,
    query,
    get info() { return info; },
    on(type, fn) { events.addEventListener(type, (e) => fn(e.detail)); },
    fit, zoom, fitBlock,
  };
  load(location.search.slice(1));
})();
