/* microgpt-graph explorer: the page's core (the state in the URL, loading, drawing). Plain JS, no
 * dependencies, no network beyond its own server.
 *
 * The server folds and lays out every view (the same pipeline as `render`) and says where each
 * link of the page leads (the view's `links`: tabs, chips, controls, crumbs, clicks; links.py);
 * this page draws the SVG it returns, pans/zooms by changing the SVG's viewBox, and keeps the whole
 * view state in the URL query (the server's state.py validates it), so reload, back/forward and
 * shared links reproduce the view. It never decides where a link goes: it navigates to the URL the
 * server gave, or puts the text the user typed into the field a link names (P.typed).
 *
 * Where its requests and its address go is transport.js's (window.MicrogptTransport: the HTTP server and
 * the URL, or a host such as the notebook widget, which asks its kernel and keeps the address itself);
 * this page asks through P.request and writes the address through T.address, nowhere else.
 *
 * The page's parts are plain scripts loaded in order by index.html, sharing one object,
 * window.explorer.page (P below): this core, camera.js (pan, zoom, fit, minimap), panel.js (the
 * side panel and the crumbs), controls.js (tabs, chips, view controls, recording, export), input.js
 * (clicks on the graph, keys), search.js (search and suggestions), overlay.js (colour by gradient,
 * compare), progress.js (what the server is doing meanwhile, and Cancel). The first view is asked
 * for at once and drawn when they are all in (DOMContentLoaded).
 *
 * Hook for add-ons (the step-through toolbar of issue 13 goes into <div id="stepper">):
 *   window.explorer.svg          the <svg> element currently drawn
 *   window.explorer.state        the current view state {field: value} (see state.py)
 *   window.explorer.view         the last /api/view answer (nodes, stats, crumbs, links, ...)
 *   window.explorer.setState(p)  merge p into the state (null removes a field) and draw it
 *   window.explorer.on('view', fn)   fn(detail) after each new view is drawn;
 *                                    detail = {svg, state, view}; also a DOM event 'explorer:view'
 *   window.explorer.query(state) the URL query of a state (for your own API calls), e.g.
 *                                explorer.request('frames', explorer.query(explorer.state) + '&mode=backward')
 *   window.explorer.request(endpoint, query, init)   the page's one way to ask (transport.js: HTTP
 *                                or a notebook's kernel): a Promise of a Response
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
  const T = window.MicrogptTransport;     // requests and the address: HTTP, or a host's (transport.js)
  const LIST = ['expand'];
  const events = new EventTarget();
  const cache = new Map();           // query -> /api/view answer (the last 24)
  let loading = null;                // AbortController of the running load
  let lastGood = '';                 // the URL query of the view on screen (the server's)
  let pending = null;                // {url, note}: a fallback being loaded, and what to say once drawn
  const partsIn = new Promise((done) => document.addEventListener('DOMContentLoaded', done));

  // what the parts share: the drawn view and its state, and each part's functions (P.fit, P.showNode, ...)
  const P = {
    $,
    state: {},                       // the current state, as in the URL
    view: null,                      // the last /api/view answer
    info: null,                      // /api/info of the current recording
    svg: null,                       // the <svg> on screen
    reveal: null,                    // scope path of the group just clicked open (focus on it once drawn)
  };
  P.esc = window.MicrogptFormat.esc;     // the pages' one escape and number format (format.js)

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
    const next = Object.assign({}, P.state);
    for (const [k, v] of Object.entries(partial)) {
      if (v === null || v === undefined || (Array.isArray(v) && !v.length)) delete next[k];
      else next[k] = Array.isArray(v) ? v.slice() : (v === true ? '1' : v === false ? '0' : String(v));
    }
    return navigate(query(next), opts || {});
  }
  function setUrlState(partial) {
    for (const [k, v] of Object.entries(partial)) {
      if (v === null || v === undefined) delete P.state[k]; else P.state[k] = String(v);
    }
    T.address.replace(query(P.state));
    if ('ov' in partial) P.applyOverlay();
    if ('side' in partial) P.applySide();
  }
  function navigate(q, opts) {
    opts = opts || {};
    if (opts.replace || q === T.address.read()) T.address.replace(q);
    else T.address.push(q);
    return load(q);
  }
  // a link that takes typed text: the server's URL with the text in the fields it names
  // ({field: text}; empty text: the field's default); the server validates it on the next view
  function typedQuery(url, fields) {
    const s = parseQuery(url);
    for (const [f, t] of Object.entries(fields)) { if (t === '' || t === null) delete s[f]; else s[f] = t; }
    return query(s);
  }
  function typed(url, fields, opts) { return navigate(typedQuery(url, fields), opts); }

  // -- loading and drawing ----------------------------------------------------------------------
  // the page cache's key: the query with its fields sorted (a list keeps its order), so the same
  // state reached by another route (fields set in another order) is the same entry
  function cacheKey(q) { const p = new URLSearchParams(q); p.sort(); return p.toString(); }
  async function load(q) {
    if (loading) loading.abort();
    const mine = loading = new AbortController();
    const busy = setTimeout(() => { $('#busy').hidden = false; if (P.progress) P.progress(true); }, 120);
    const t0 = performance.now();
    try {
      let v = cache.get(cacheKey(q));
      if (!v) {
        const r = await T.request('view', q, {signal: mine.signal});
        v = await r.json();
        if (!r.ok) throw Object.assign(new Error(v.error || r.statusText), {status: r.status, body: v});
        cache.set(cacheKey(q), v);
        cache.set(cacheKey(v.url), v);       // the canonical URL too: a link or back/forward to it hits
        while (cache.size > 24) cache.delete(cache.keys().next().value);
      }
      if (!P.view) performance.mark('explorer:first-answer');   // (markFirst)
      await partsIn;                         // the first view: drawn once every part of the page is in
      if (mine !== loading) return;
      if (!P.info || P.info.key !== v.key) await loadInfo(v.url);
      draw(v, q, performance.now() - t0);
      hideMsg();
      // drawn other than asked (too big: smaller; a link that could not be shown: the nearest view)
      const said = [pending && pending.url === v.url ? pending.note : null, v.fallback].filter(Boolean);
      if (said.length) showNote(said.join(' · '));
      pending = null;
    } catch (e) {
      if (e.name === 'AbortError') return;
      await partsIn;
      P.reveal = null;
      // the server still opening its saved trace (503): its bar, then this view asked again (recording.js)
      if (e.status === 503 && e.body.opening && mine === loading) return P.opening(e.body, () => load(q));
      const fb = e.body ? e.body.fallback : undefined;
      // a link opened (a reload, a shared URL) that cannot be shown: never a blank page, but the
      // nearest view the server can show (else the default one), and a note; with a view on screen,
      // a refused change keeps it and says why
      if (typeof fb === 'string' && fb !== q && mine === loading && !P.view) {
        pending = {url: fb, note: e.body.note || e.message};
        T.address.replace(fb);
        return load(fb);
      }
      if (!P.view && q !== '' && mine === loading) {
        pending = {url: '', note: `this link cannot be shown (${e.message}); showing the default view instead`};
        T.address.replace('');
        return load('');
      }
      showMsg(e.message);
      if (lastGood !== q) T.address.replace(lastGood);   // keep URL = what is drawn
      P.state = parseQuery(lastGood);
      P.syncControls();
    } finally {
      clearTimeout(busy);
      if (mine === loading) { $('#busy').hidden = true; loading = null; if (P.progress) P.progress(false); }
    }
  }
  async function loadInfo(q) {
    const r = await T.request('info', q);
    const body = await r.json();
    if (!r.ok) throw new Error(body.error);
    P.info = body;
    P.drawPositions();
  }

  function draw(v, q, ms) {
    // the same drawing as on screen (only the selection or the search changed): keep the SVG
    // element, its decorations and the camera; re-mark the nodes instead of parsing it again
    const old = P.view;
    const reuse = !!(old && P.svg && v.svg === old.svg && frameState(v.url) === frameState(lastGood));
    const hlMoved = !old || v.highlight.join() !== old.highlight.join();
    P.view = v;
    lastGood = v.url;                  // the server's URL of it: after a refused view, the URL goes back to this
    P.state = parseQuery(v.url);
    if (v.url !== q) T.address.replace(v.url);
    // the bars around the canvas first: their height decides the canvas size the camera is set for
    P.drawCrumbs();
    P.drawCompare();
    P.syncControls();
    const s = v.stats;
    $('#status').textContent = `${v.title} · level ${s.level}${s.auto ? ' (auto)' : ''} · ${s.nodes} nodes, ` +
      `${s.edges} edges · ${s.ops} ops in view, ${s.folded_ops} folded` +
      (v.hl_count ? ` · ${v.hl_count} search match${v.hl_count === 1 ? '' : 'es'}, ${v.highlight.length} ` +
        `node${v.highlight.length === 1 ? '' : 's'} outlined` : '') +
      ` · ${v.cached ? 'cached' : `built ${v.ms.build} ms + layout ${v.ms.render} ms`} · drawn in ${Math.round(ms)} ms`;
    P.applySide();
    if (P.applyPresent) P.applyPresent();     // presentation mode (present.js): before the camera moves
    if (reuse) {
      mark();
      if (hlMoved && v.highlight.length) P.focusOn(v.highlight);
    } else {
      const g = $('#graph');
      g.textContent = '';       // the old drawing out, the canvas measured without one (camera.js holdCanvas):
      P.holdCanvas(true);       // nothing below reads a layout, so the new drawing is laid out once, as framed
      try {
        g.innerHTML = v.svg.slice(v.svg.indexOf('<svg'));
        P.svg = g.querySelector('svg');
        P.newDrawing();
        decorate();
        P.drawMinimap();
        const opened = (P.state.expand || []).slice(-1)[0];
        const inFrame = opened ? Object.keys(v.nodes).filter((k) => v.nodes[k].exp === opened) : [];
        // a group clicked open (level raised): the nodes inside it, as the new view names them
        // (or the block named by focus: a reload or a link shows it the same way)
        const into = P.reveal || P.state.focus;
        const inside = into ? Object.keys(v.nodes).filter((k) => v.nodes[k].k !== 'r' && v.nodes[k].path &&
          (v.nodes[k].path === into || v.nodes[k].path.startsWith(into + '/'))) : [];
        if (v.highlight.length) P.focusOn(v.highlight);
        else if (inFrame.length) P.focusOn(inFrame);    // an expansion: show what opened
        else if (inside.length) P.flash(inside);        // outlined for a moment, in view
        else P.home();                                  // readable, at where to look first
      } finally { P.holdCanvas(false); }
    }
    P.reveal = null;
    document.title = `${v.title} · microgpt-graph`;
    if (P.state.sel) P.showNode(P.state.sel); else P.clearPanel();
    const detail = {svg: P.svg, state: Object.assign({}, P.state), view: v, reused: reuse};
    events.dispatchEvent(new CustomEvent('view', {detail}));
    document.dispatchEvent(new CustomEvent('explorer:view', {detail}));
    if (!old) markFirst();
  }
  // where the first view's time goes, as User Timing marks (benchmarks/bench_notebook.py reads them):
  // its answer in hand (load), drawn (here), painted (a message posted in the next animation frame
  // is handled once that frame is rendered)
  function markFirst() {
    performance.mark('explorer:first-drawn');
    requestAnimationFrame(() => {
      const c = new MessageChannel();
      c.port1.onmessage = () => performance.mark('explorer:first-painted');
      c.port2.postMessage(0);
    });
  }

  function nodeName(g) { const t = g.querySelector('title'); return t ? t.textContent : null; }

  // once per drawn SVG: names, what is clickable (a link of the server's, a scalar, a matrix, a
  // reference), the expansion frames; then mark()
  function decorate() {
    const view = P.view;
    P.paintHeat(P.svg, view.heat);      // a matrix's heat-map: its rows are boxes the page paints (heat.js)
    for (const g of P.svg.querySelectorAll('g.node')) {
      const name = nodeName(g);
      const n = view.nodes[name] || view.nodes[(name.match(/^(m\d+)_[dg]\d+$/) || [])[1]];
      if (!n) continue;
      g.dataset.name = name;
      if (view.links.nodes[name] || n.k === 's' || n.k === 'm' || n.k === 'r') g.classList.add('clickable');
      const a = g.querySelector('a');     // Graphviz's tooltip holder: keep it, but it must not navigate
      if (a) a.removeAttribute('href');
    }
    drawFrames();
    mark();
  }
  // the search outline (hl), the selected scalar (sel) and the overlay: classes only
  function mark() {
    const hl = new Set(P.view.highlight);
    for (const g of P.svg.querySelectorAll('g.node')) {
      const n = P.view.nodes[g.dataset.name];
      g.classList.toggle('hl', hl.has(g.dataset.name));
      g.classList.toggle('sel', !!(n && n.k === 's' && P.state.sel && String(n.id) === P.state.sel));
    }
    P.applyOverlay();
  }
  function frameState(q) {       // the step-through's fields of a query: a change there redraws
    const s = parseQuery(q);
    return `${s.frame}|${s.mode}|${s.ov}`;
  }

  // the dashed frame around each expansion (a click on it folds it back: input.js)
  function drawFrames() {
    const root = P.svg.querySelector('g.graph');
    if (!root) return;
    const by = {};
    for (const g of P.svg.querySelectorAll('g.node')) {
      const n = P.view.nodes[nodeName(g)];
      if (n && n.exp) (by[n.exp] = by[n.exp] || []).push(g);
    }
    const NS = 'http://www.w3.org/2000/svg';
    for (const [pat, gs] of Object.entries(by)) {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const g of gs) {
        const b = window.MicrogptCamera.shapeBox(g);
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

  let msgTimer = null;
  function showMsg(text) {
    const m = $('#msg');
    m.textContent = text;
    m.className = '';
    m.hidden = false;
    clearTimeout(msgTimer);
    msgTimer = setTimeout(hideMsg, 9000);
  }
  // a note that stays until the next view or its ✕: what was drawn instead of what was asked
  function showNote(text) {
    const m = $('#msg');
    clearTimeout(msgTimer);
    m.className = 'note';
    m.innerHTML = `<span></span><button class="x" title="close" aria-label="close">✕</button>`;
    m.firstChild.textContent = text;
    m.querySelector('button').onclick = hideMsg;
    m.hidden = false;
  }
  function hideMsg() { $('#msg').hidden = true; }

  Object.assign(P, {parseQuery, query, setState, setUrlState, navigate, typed, typedQuery, nodeName, showMsg, showNote,
    request: T.request});
  T.address.onChange(() => load(T.address.read()));     // back/forward, or the host showing another view

  window.explorer = {
    get svg() { return P.svg; },
    get state() { return Object.assign({}, P.state); },
    get view() { return P.view; },
    setState,
    setUrlState,
    query,
    request: T.request,
    get info() { return P.info; },
    on(type, fn) { events.addEventListener(type, (e) => fn(e.detail)); },
    fit: (...a) => P.fit(...a),
    zoom: (...a) => P.zoom(...a),
    fitBlock: (...a) => P.fitBlock(...a),
    page: P,
  };
  // the first view is asked for now (a host says which first), while the parts after this file load
  // and add themselves to P (presentation mode asks for the screen's shape in it: present.js, loaded
  // before this file)
  T.address.start().then((first) => {
    const asked = window.explorerFirstQuery ? window.explorerFirstQuery(first) : first;
    if (asked !== first) T.address.replace(asked);
    load(asked);
  });
})();
