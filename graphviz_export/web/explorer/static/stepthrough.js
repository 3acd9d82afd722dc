/* microgpt-graph explorer: the step-through toolbar in #stepper.
 *
 * Plays the current view's frames (/api/frames = graphviz_export.frames of the drawn view) with the
 * tour's player (stepper.js, MicrogptStepper) on the SVG already on screen: a frame only switches CSS
 * classes and texts, nothing is laid out again. Positions 0..count are the player's (0: nothing
 * computed yet; grads not yet reached read 'grad ?'); in backward mode one more position, count + 1,
 * is the update phase: what Adam does to the parameters in view (/api/update = graphviz_export.steps.update,
 * its table drawn by the server: web/update_table.py).
 *
 * The position is the URL's `frame` and the mode its `mode` (backward | forward), so reload,
 * back/forward and shared links restore them. Opening, closing and changing mode push a history
 * entry; stepping replaces it (one entry per frame would bury the back button).
 *
 * The camera follows (camera.js P.follow: the lit node always in view, its lit edges where the
 * scale allows, a smooth pan); `c` recentres on the frame, `1` zooms to it readable; a click on a
 * node while stepping jumps to the frame that lights it (a scalar is selected too: its details).
 * In the update phase a matrix view's heat-map shows Δvalue (stepper.js paintUpdate).
 *
 * Keys while open (window capture, before explorer.js): ← → one position, Space play/pause,
 * Home/End first/last, c recentre, s close; Shift+← → still pan. Closed: s opens. window.stepthrough
 * is for tests.
 */
(function () {
  'use strict';
  const ex = window.explorer;
  const bar = document.getElementById('stepper');
  const side = document.getElementById('stepinfo');
  const fcache = new Map();          // frames query -> /api/frames answer
  const ucache = new Map();          // update query -> /api/update answer
  let player = null, frames = null, upd = null;
  let pos = 0, timer = null, rate = 1, ticket = 0, mode = 'backward', open = false;

  const esc = window.MicrogptFormat.esc;     // the pages' one escape (format.js)

  function buildQuery(state, withMode) {
    const s = Object.assign({}, state);
    for (const k of ['sel', 'hl', 'frame', 'ov']) delete s[k];
    if (!withMode) delete s.mode;
    return ex.query(s);
  }
  function count() { return frames ? frames.frames.length : 0; }
  function last() { return count() + (mode === 'backward' ? 1 : 0); }   // + the update phase
  function phase() { return mode === 'forward' ? 'forward' : pos > count() ? 'update' : 'backward'; }

  // -- the toolbar ------------------------------------------------------------------------------
  function drawClosed(state) {
    stop();
    open = false;
    bar.classList.remove('stepping');
    side.hidden = true;
    side.innerHTML = '';
    if (state.cmp) {
      bar.innerHTML = '<span class="hint">The step-through plays one recording: leave compare to use it.</span>';
      return;
    }
    // closed: two buttons at the end of the tab row (the explanation is their tooltip)
    bar.innerHTML = '<button id="st-open" title="Step through backprop on this view (s): frames light each node as its ' +
      'grad becomes final; then Adam\u2019s update">▶ Step through backprop</button>' +
      '<button id="st-open-fwd" title="Step through the forward pass on this view: values appear op by op">forward</button>';
    document.getElementById('st-open').onclick = () => ex.setState({frame: 0, mode: null});
    document.getElementById('st-open-fwd').onclick = () => ex.setState({frame: 0, mode: 'forward'});
  }

  function drawOpen() {
    bar.classList.add('stepping');         // a line of its own under the tabs (explorer.css)
    bar.innerHTML =
      `<span id="st-phase" class="mg-phase"></span>` +
      `<select id="st-mode" title="what to play"><option value="backward">backward</option><option value="forward">forward</option></select>` +
      '<button id="st-first" title="first (Home)">«</button><button id="st-prev" title="one back (←)">◀</button>' +
      '<button id="st-play" title="play / pause (Space)">▶ play</button><button id="st-next" title="one on (→)">▶</button>' +
      '<button id="st-last" title="last (End)">»</button>' +
      `<input id="st-scrub" class="grow" type="range" min="0" max="${last()}" step="1" value="${pos}" aria-label="frame">` +
      '<span id="st-frame"></span>' +
      '<label>speed <select id="st-speed"><option value="0.5">0.5×</option><option value="1">1×</option>' +
      '<option value="2">2×</option><option value="4">4×</option><option value="10">10×</option></select></label>' +
      '<button id="st-close" title="close the step-through (s)">✕</button>';
    const $ = (id) => document.getElementById(id);
    $('st-mode').value = mode;
    $('st-speed').value = String(rate);
    $('st-mode').onchange = (e) => ex.setState({mode: e.target.value === 'backward' ? null : e.target.value, frame: 0});
    $('st-first').onclick = () => go(0);
    $('st-prev').onclick = () => go(pos - 1);
    $('st-next').onclick = () => go(pos + 1);
    $('st-last').onclick = () => go(last());
    $('st-play').onclick = toggle;
    $('st-scrub').oninput = (e) => go(+e.target.value);
    $('st-speed').onchange = (e) => { rate = +e.target.value; if (timer) { stop(); play(); } };
    $('st-close').onclick = close;
  }

  function syncBar() {
    const ph = phase();
    const el = document.getElementById('st-phase');
    if (!el) return;
    el.className = `mg-phase mg-phase-${ph}`;
    el.textContent = ph;
    const n = count();
    document.getElementById('st-frame').textContent = ph === 'update' ? `update (after frame ${n} / ${n})` : `frame ${pos} / ${n}`;
    const sc = document.getElementById('st-scrub');
    sc.max = last();
    if (+sc.value !== pos) sc.value = pos;
    document.getElementById('st-play').textContent = timer ? '⏸ pause' : '▶ play';
  }

  // -- moving -----------------------------------------------------------------------------------
  function go(p, quiet) {
    if (!player) return pos;
    p = Math.max(0, Math.min(last(), p | 0));
    pos = p;
    const svg = ex.svg;
    if (p <= count()) {
      player.seek(p);
      if (svg) {
        svg.querySelectorAll('g.node.mg-update').forEach((g) => g.classList.remove('mg-update'));
        window.MicrogptStepper.clearUpdate(svg, upd && upd.heat);
      }
    } else {
      player.seek(count());
      showUpdate();
    }
    syncBar();
    follow(true);
    if (!quiet) ex.setUrlState({frame: p});
    document.dispatchEvent(new CustomEvent('explorer:frame', {detail: {position: pos, phase: phase()}}));
    return pos;
  }
  // -- the camera: the frame's lit node in view (camera.js P.follow) ------------------------------
  const find = (name) => ex.svg && ex.svg.querySelector(`[id="node-${CSS.escape(name)}"]`);
  function frameAt(p) {
    if (!frames || !frames.frames.length) return null;
    return frames.frames[Math.max(0, Math.min(count(), p) - 1)] || frames.frames[0];
  }
  function follow(animate) {
    const P = ex.page;
    if (!player || !P.follow || !ex.svg) return;
    if (phase() === 'update') {          // the parameters Adam moves
      const ps = [...ex.svg.querySelectorAll('g.node.mg-update')];
      const box = window.MicrogptCamera.boxOf(ex.svg, ps.length ? ps : [find(frameAt(count()).node)]);
      P.follow({must: box, want: null}, animate);
      return;
    }
    P.follow(window.MicrogptCamera.frameBoxes(ex.svg, frameAt(pos), find), animate);
  }
  // the smallest a frame shrinks a running sum's font (frame_texts.py): presentation mode's 16 px
  // hold for it too (camera.js minScale)
  function shrink() {
    let least = 1;
    if (frames) {
      for (const d of Object.values(frames.nodes)) {
        for (const f of d.fields || []) for (const e of f.shown) if (e.length > 2) least = Math.min(least, e[2]);
      }
    }
    return least;
  }
  // a click on a node while stepping: the frame that lights it (a reference: what it stands for)
  function frameOfClick(e) {
    const g = e.target.closest && e.target.closest('g.node, g.cluster');
    if (!g || !frames) return null;
    let name = g.dataset.name || (g.id.startsWith('node-') ? g.id.slice(5) : '');
    const heat = /^(m\d+)_[dgl]\d+$/.exec(name);
    if (heat) name = heat[1];
    const v = ex.view && ex.view.nodes[name];
    if (!frames.nodes[name] && v && v.refers) name = v.refers.find((r) => frames.nodes[r]) || name;
    return frames.nodes[name] ? {name, frame: frames.nodes[name].frame, node: v} : null;
  }
  document.getElementById('canvas').addEventListener('click', (e) => {
    if (!open || !player || ex.page.dragged || e.target.closest('#camera, #minimap')) return;
    const hit = frameOfClick(e);
    if (!hit) return;
    e.stopImmediatePropagation();
    e.preventDefault();
    go(hit.frame + 1);
    if (hit.node && hit.node.k === 's') ex.setState({sel: hit.node.id}, {replace: true});
  }, true);
  function stop() {
    if (!timer) return;
    clearInterval(timer);
    timer = null;
    document.dispatchEvent(new CustomEvent('explorer:frame', {detail: {position: pos, phase: phase()}}));
  }
  function play() {
    stop();
    if (pos >= last()) go(0);
    timer = setInterval(() => {
      if (pos >= last()) { stop(); syncBar(); return; }
      go(pos + 1);
    }, 600 / rate);
    syncBar();
  }
  function toggle() { if (timer) { stop(); syncBar(); } else play(); }
  function close() { stop(); ex.setState({frame: null, mode: null}); }

  // -- the update phase -------------------------------------------------------------------------
  // A per-matrix summary (how far Adam moves each matrix in view), then the rows, a page of
  // UPAGE at a time: one matrix or all, in id order or largest |Δvalue| first. Every row of
  // every matrix is reachable; the paging is the page's own (not in the URL).
  const UPAGE = 100;
  let uopt = {matrix: '', sort: 'id', offset: 0};
  let uview = '';                    // the view query uopt belongs to (a new view starts over)
  async function showUpdate() {
    const base = buildQuery(ex.state, false);
    if (base !== uview) { uview = base; uopt = {matrix: '', sort: 'id', offset: 0}; }
    const q = base + (base ? '&' : '') + ex.query({matrix: uopt.matrix, sort: uopt.sort, offset: uopt.offset, limit: UPAGE});
    const mine = ticket;
    side.hidden = false;
    let u = ucache.get(q);
    if (!u) {
      if (!upd) side.innerHTML = '<div class="mg-phase mg-phase-update">update</div><p class="hint">asking Adam…</p>';
      const r = await ex.request('update', q);
      u = await r.json();
      if (!r.ok) { side.innerHTML = `<p class="bad">${esc(u.error)}</p>`; return; }
      ucache.set(q, u);
      if (ucache.size > 32) ucache.delete(ucache.keys().next().value);
    }
    if (mine !== ticket || phase() !== 'update') return;
    upd = u;
    const svg = ex.svg;
    for (const name of Object.keys(u.nodes)) {
      const g = svg && svg.querySelector(`g.node[data-name="${CSS.escape(name)}"]`);
      if (g) g.classList.add('mg-update');
    }
    window.MicrogptStepper.paintUpdate(svg, u.heat);
    follow(true);
    const keep = side.querySelector('.updwrap');
    side.innerHTML = updateHtml(u);
    if (keep) { const w = side.querySelector('.updwrap'); if (w) w.scrollTop = 0; }
  }
  function setUpdate(p) { Object.assign(uopt, p); showUpdate(); }
  side.addEventListener('click', (e) => {
    const m = e.target.closest('[data-matrix]');
    if (m) { setUpdate({matrix: m.dataset.matrix === uopt.matrix ? '' : m.dataset.matrix, offset: 0}); return; }
    const b = e.target.closest('button[data-page]');
    if (b && upd) setUpdate({offset: Math.max(0, uopt.offset + Number(b.dataset.page) * UPAGE)});
  });
  side.addEventListener('change', (e) => {
    if (e.target.id === 'upd-matrix') setUpdate({matrix: e.target.value, offset: 0});
    else if (e.target.id === 'upd-sort') setUpdate({sort: e.target.value, offset: 0});
  });

  // the table is the server's (graphviz_export/web/update_table.py, the tour's too): this page
  // adds the phase and frame, and handles its controls' clicks (above)
  function updateHtml(u) {
    return '<div class="mg-phase mg-phase-update">update</div>' +
      `<span class="mg-frame">after frame ${count()} / ${count()}</span>` + u.html;
  }

  // -- a view was drawn: (re)attach to its SVG --------------------------------------------------
  async function onView(d) {
    if (d.reused && open && player) return;      // same SVG (a selection or search changed): keep playing on it
    const mine = ++ticket;
    stop();
    player = null;
    upd = null;
    const state = d.state;
    if (state.frame === undefined || state.cmp) { drawClosed(state); return; }
    mode = state.mode || 'backward';
    open = true;
    const q = buildQuery(state, true);
    let f = fcache.get(q);
    if (!f) {
      bar.innerHTML = '<span class="mg-phase mg-phase-ready">frames</span> <span class="hint">computing the frames…</span>';
      try {
        const r = await ex.request('frames', q);
        f = await r.json();
        if (!r.ok) throw new Error(f.error);
      } catch (e) {
        if (mine === ticket) bar.innerHTML = `<span class="bad">${esc(e.message)}</span> <button id="st-close">✕</button>`;
        const c = document.getElementById('st-close');
        if (c) c.onclick = close;
        return;
      }
      fcache.set(q, f);
      if (fcache.size > 16) fcache.delete(fcache.keys().next().value);
    }
    if (mine !== ticket) return;
    frames = f;
    side.hidden = false;
    side.innerHTML = '';
    player = window.MicrogptStepper.attach(d.svg, f, {panel: side, start: 0});
    pos = 0;
    drawOpen();
    const want = Math.max(0, Math.min(last(), Number(state.frame) || 0));
    go(want, true);
    follow(false);                       // the view just drawn: straight to the frame
    if (want !== Number(state.frame)) ex.setUrlState({frame: want});   // a frame past the end: the last
  }
  ex.on('view', onView);
  if (ex.view && ex.svg) onView({svg: ex.svg, state: ex.state, view: ex.view});

  window.addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input:not([type=range]), select, textarea')) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    if (!open) {
      if (k === 's' && !ex.state.cmp && ex.view) { ex.setState({frame: 0, mode: null}); e.preventDefault(); e.stopImmediatePropagation(); }
      return;
    }
    if (e.shiftKey && (k === 'ArrowLeft' || k === 'ArrowRight')) return;     // pan, as when closed
    if (k === 'ArrowRight') go(pos + 1);
    else if (k === 'ArrowLeft') go(pos - 1);
    else if (k === ' ') toggle();
    else if (k === 'Home') go(0);
    else if (k === 'End') go(last());
    else if (k === 'c') { if (ex.page.cam) ex.page.cam.prefer(null); follow(true); }
    else if (k === 's') close();
    else return;
    e.preventDefault();
    e.stopImmediatePropagation();
  }, true);

  // what the camera's `1` (home) and presentation mode ask of the step-through
  ex.page.stepNames = () => (open && player && frameAt(pos) ? [frameAt(pos).node] : null);
  ex.page.textShrink = () => (open && player ? shrink() : 1);

  window.stepthrough = {
    open: () => open && !!player,
    follow: () => follow(false),
    position: () => pos,
    count,
    last,
    phase,
    step: (dlt) => go(pos + (dlt === undefined ? 1 : dlt)),
    seek: (p) => go(p),
    play, pause: () => { stop(); syncBar(); }, playing: () => timer !== null,
    frames: () => frames,
    update: () => upd,
  };
})();
