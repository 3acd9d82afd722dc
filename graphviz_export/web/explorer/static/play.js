/* microgpt-graph explorer: play training on the view's layout, and break backprop on purpose (issue 26).
 *
 * ▶ trains the reference run (seed, shuffled names, lr 0.01 decaying over its 1000 steps; or on one
 * document, or from another peak learning rate) one optimizer step per /api/play request. The view
 * keeps its layout: each step's answer holds the visible nodes' numbers (steps/live.py), written
 * into the same SVG <text> elements and fills, so only numbers and colours change. The step is in
 * the URL (train=k, written without redrawing), so a pause, a reload or a shared link shows that
 * step, and every other part of the page (panel, step-through, Adam's update, compare) asks the
 * server about step k. A loss curve runs beside it, the uniform baseline -log(1/vocab) marked.
 *
 * The lab select draws the recording's backward done wrongly (lab=MODE: the server's diff of
 * wrong − correct, the first diverging node outlined; the compare bar says why and links to it).
 * Every URL comes from the server's links (links.live_links); nothing here decides where one goes.
 */
(function (P) {
  'use strict';
  const $ = P.$, esc = P.esc, fmt = window.MicrogptFormat.fmt;
  const NS = 'http://www.w3.org/2000/svg';
  let fields = null;         // name -> {els: [<text>], size: [font-size], shapes: [<polygon|path|ellipse>], font}
  let indexed = null;        // the <svg> `fields` indexes
  let playing = false;
  let target = 0;            // the step to stop at
  let curve = [];            // training loss per step (index k - 1)
  let docCurve = {};         // step -> loss of the document shown
  let live = null;           // the last view's `live`

  const bar = document.createElement('div');
  bar.id = 'play';
  bar.innerHTML =
    '<button id="playbtn" title="Train the reference run step by step on this layout (t)">▶ train</button>' +
    '<label title="how many optimizer steps ▶ takes">× <input id="playn" size="3" value="20" inputmode="numeric"></label>' +
    '<label title="the documents trained on: the reference order (the shuffled names), or one document">on ' +
    '<input id="tdoc" size="6" maxlength="64" placeholder="names" spellcheck="false"></label>' +
    '<label title="peak learning rate (the reference: 0.01, decaying to 0 over 1000 steps)">lr ' +
    '<input id="lr" size="4" placeholder="0.01" inputmode="decimal"></label>' +
    '<span id="playstep" class="hint"></span>' +
    '<label title="compare this step with an earlier one (cmp=train:J)">Δ vs step ' +
    '<input id="cmpstep" size="3" inputmode="numeric"></label>' +
    '<button id="leaveplay" hidden title="back to the recording of the page\'s own model">■</button>' +
    '<label title="the backward done wrongly on purpose, drawn as wrong − correct">break ' +
    '<select id="lab"><option value="">—</option></select></label>';
  $('#bar').insertBefore(bar, $('#stepper'));
  const chart = document.createElement('div');
  chart.id = 'losschart';
  chart.hidden = true;
  chart.title = 'click: fold the curve to its legend (it covers the picture at 1024x768), or open it again';
  $('#canvas').appendChild(chart);
  chart.addEventListener('click', () => chart.classList.toggle('folded'));

  // -- writing a step's numbers into the SVG -------------------------------------------------------
  function index(svg, drawn) {
    fields = {};
    indexed = svg;
    for (const [name, texts] of Object.entries(drawn)) {
      const g = svg.querySelector('[id="node-' + name + '"]');
      if (!g) continue;
      const all = Array.from(g.querySelectorAll('text'));
      const els = texts.map((t) => all.find((el) => el.textContent === t) || null);
      const shapes = Array.from(g.querySelectorAll('polygon, path, ellipse'))
        .filter((s) => s.getAttribute('fill') && s.getAttribute('fill') !== 'none');
      fields[name] = {els, size: els.map((el) => el && el.getAttribute('font-size')), shapes, texts: all};
    }
  }
  function apply(nodes) {
    for (const [name, got] of Object.entries(nodes)) {
      const f = fields[name];
      if (!f) continue;
      const n = got.length - 2;
      for (let i = 0; i < n && i < f.els.length; i++) {
        const el = f.els[i];
        if (!el) continue;
        const [text, scale] = got[i];
        if (el.textContent !== text) el.textContent = text;
        const size = scale && f.size[i] ? String(parseFloat(f.size[i]) * scale) : f.size[i];
        if (size && el.getAttribute('font-size') !== size) el.setAttribute('font-size', size);
      }
      for (const s of f.shapes) s.setAttribute('fill', got[n]);
      for (const t of f.texts) t.setAttribute('fill', got[n + 1]);
    }
  }
  function drawnAsPayload(drawn) {
    const out = {};
    for (const [name, texts] of Object.entries(drawn)) {
      const f = fields[name];
      if (f) out[name] = [...texts.map((t) => [t]), f.fill0, f.font0];
    }
    return out;
  }

  // -- the loss curve ---------------------------------------------------------------------------
  function drawChart() {
    if (!live) { chart.hidden = true; return; }
    chart.hidden = false;
    const W = 280, H = 130, L = 42, B = 18;     // 11 px axis text: readable projected at 1024x768
    const n = Math.max(curve.length, target, 10);
    const base = live.baseline;      // null for a script's calls: no vocabulary to be uniform over
    const ys = curve.concat(Object.values(docCurve), base === null ? [] : [base]).filter((v) => v !== null);
    const hi = Math.max(...ys) * 1.02, lo = Math.min(...ys) * 0.98;
    const x = (k) => L + (W - L - 4) * k / n, y = (v) => 4 + (H - B - 8) * (hi - v) / ((hi - lo) || 1);
    const line = (pts) => pts.map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join('');
    const train = line(curve.map((v, i) => [i + 1, v]).filter((p) => p[1] !== null));
    const doc = line(Object.entries(docCurve).map(([k, v]) => [+k, v]).sort((a, b) => a[0] - b[0]));
    const k = live.step;
    chart.innerHTML =
      `<svg width="${W}" height="${H}" role="img" aria-label="loss curve"><g class="axes">` +
      `<line x1="${L}" y1="${H - B}" x2="${W - 4}" y2="${H - B}"/><line x1="${L}" y1="4" x2="${L}" y2="${H - B}"/></g>` +
      `<text x="2" y="13">${fmt(hi)}</text><text x="2" y="${H - B}">${fmt(lo)}</text>` +
      `<text x="${L}" y="${H - 4}">step 0</text><text x="${W - 4}" y="${H - 4}" text-anchor="end">${n}</text>` +
      (base === null ? '' : `<line class="baseline" x1="${L}" x2="${W - 4}" y1="${y(base)}" y2="${y(base)}">` +
        `<title>uniform baseline: −log(1/${live.vocab}) = ${fmt(base)}</title></line>`) +
      `<path class="train" d="${train}"><title>training loss of each step's document</title></path>` +
      `<path class="doc" d="${doc}"><title>loss of the document shown</title></path>` +
      `<line class="now" x1="${x(k)}" x2="${x(k)}" y1="4" y2="${H - B}"/></svg>` +
      `<div class="legend"><span class="train">— training loss</span> <span class="doc">— ${esc((P.info && P.info.doc) || 'this doc')}</span> ` +
      (base === null ? '' : `<span class="baseline">- - uniform ${fmt(base)}</span>`) + '</div>';
  }
  function showStep() {
    const k = live ? live.step : null;
    $('#playstep').textContent = k === null ? '' :
      `step ${k} / ${live.schedule}` + (curve.length && k ? ` · training loss ${fmt(curve[k - 1])}` : '') +
      (live.tdoc ? ` · on '${live.tdoc}'` : '') + (live.lr === null ? ' · the script\'s own calls' : ` · lr ${live.lr}`);
    $('#playbtn').textContent = playing ? '❚❚ pause' : '▶ train';
    $('#leaveplay').hidden = !P.view || !P.view.links.leave_play;
  }

  // -- playing ------------------------------------------------------------------------------------
  async function loop() {
    while (playing && live && live.step < target) {
      const t0 = performance.now();
      let body;
      try {
        const r = await P.request('play', P.query(P.state) + '&steps=1');
        body = await r.json();
        if (!r.ok) throw new Error(body.error || r.statusText);
      } catch (e) { playing = false; P.showMsg(e.message); break; }
      if (!playing && !body) break;
      await new Promise((done) => requestAnimationFrame(done));
      for (const s of body.steps) {
        apply(s.nodes);
        curve[s.step - 1] = s.loss;
        docCurve[s.step] = s.doc_loss;
        live.step = s.step;
      }
      P.setUrlState({train: live.step});
      drawChart();
      showStep();
      window.explorer.lastStepMs = performance.now() - t0;
      document.dispatchEvent(new CustomEvent('explorer:played', {detail: {step: live.step}}));
    }
    playing = false;
    showStep();
    // the view at the step reached: the panel, overlays, links and the positions' losses are step
    // k's (the same layout: no redraw)
    if (live) { P.info = null; P.navigate(P.query(P.state), {replace: true}); }
  }
  function start() {
    const n = parseInt($('#playn').value, 10);
    if (!(n > 0)) { P.showMsg(`× ${$('#playn').value}: give a number of steps, such as 20`); return; }
    const want = {train: P.state.train || '0', tdoc: $('#tdoc').value.trim(), lr: $('#lr').value.trim()};
    const same = live && (P.state.tdoc || '') === want.tdoc && (P.state.lr || '') === want.lr && !P.state.cmp &&
      !P.state.lab;
    target = (same ? live.step : 0) + n;
    playing = true;
    showStep();
    if (same) loop();
    else P.typed(P.view.links.play.url, same ? {} : {train: same ? want.train : '0', tdoc: want.tdoc, lr: want.lr});
  }

  // -- each view ------------------------------------------------------------------------------------
  window.explorer.on('view', (d) => {
    const v = d.view;
    live = v.live;
    const sel = $('#lab');
    if (P.info && sel.options.length !== (P.info.labs || []).length + 1) {
      sel.innerHTML = '<option value="">—</option>' +
        (P.info.labs || []).map((m) => `<option value="${esc(m)}">${esc(m)}</option>`).join('');
    }
    sel.value = P.state.lab || '';
    $('#tdoc').value = P.state.tdoc || '';
    $('#lr').value = P.state.lr || '';
    $('#cmpstep').value = (P.state.cmp || '').startsWith('train:') ? P.state.cmp.slice(6) : '';
    if (!live) { fields = null; curve = []; docCurve = {}; playing = false; drawChart(); showStep(); return; }
    if (live.drawn && (indexed !== d.svg || !d.reused)) {
      index(d.svg, live.drawn);
      for (const f of Object.values(fields)) {
        f.fill0 = f.shapes.length ? f.shapes[0].getAttribute('fill') : null;
        f.font0 = f.texts.length ? (f.texts[0].getAttribute('fill') || '#000000') : '#000000';
      }
    }
    if (live.drawn && fields) apply(live.now || drawnAsPayload(live.drawn));
    curve = live.losses.slice();
    docCurve = Object.assign({}, live.doc_losses);
    drawChart();
    showStep();
    if (playing && live.step < target) loop();
  });

  $('#playbtn').addEventListener('click', () => { if (playing) playing = false; else start(); showStep(); });
  $('#leaveplay').addEventListener('click', () => { playing = false; P.navigate(P.view.links.leave_play); });
  $('#lab').addEventListener('change', (e) => {
    playing = false;
    P.typed(P.view.links.lab.url, {lab: e.target.value});
  });
  $('#cmpstep').addEventListener('change', (e) => {
    const l = P.view.links.compare_step;
    const j = e.target.value.trim();
    if (l) P.typed(l.url, {cmp: j === '' ? '' : 'train:' + j});
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 't' || e.target.closest('input, select, textarea') || e.ctrlKey || e.metaKey) return;
    $('#playbtn').click();
  });
  window.explorer.play = {
    start, pause: () => { playing = false; }, get playing() { return playing; },
    get step() { return live ? live.step : null; },
  };
})(window.explorer.page);
