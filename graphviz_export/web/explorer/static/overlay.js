/* microgpt-graph explorer: colours over the drawing. The overlay recolours nodes by |grad| or
 * |grad x data| (CSS classes ov0..ov5, log scale; `ov` in the URL); compare draws the before/after
 * differences of a second checkpoint or of N training steps (`cmp`; the server's diff), entered and
 * left through the view's links. A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$, esc = P.esc, F = window.MicrogptFormat;

  // -- overlays: recolour nodes by |grad| or |grad x data| (classes ov0..ov5, log scale) -------
  const OV_TEXT = {grad: '|grad|', contrib: '|grad × data|'};
  function applyOverlay() {
    const svg = P.svg, view = P.view;
    if (!svg || !view) return;
    const ov = P.state.ov;
    const k = ov === 'contrib' ? 1 : 0;
    svg.classList.toggle('overlay', !!ov);
    const mags = {};
    let top = 0, broken = 0;
    for (const g of svg.querySelectorAll('g.node')) {
      const n = view.nodes[g.dataset.name];
      const m = n && n.mag ? F.num(n.mag[k]) : null;
      if (m === null) continue;
      mags[g.dataset.name] = m;
      if (isFinite(m)) top = Math.max(top, m); else broken++;
    }
    for (const g of svg.querySelectorAll('g.node')) {
      for (let j = 0; j < 6; j++) g.classList.remove('ov' + j);
      g.classList.remove('ovnan');
      if (!ov || !(g.dataset.name in mags)) continue;
      const m = mags[g.dataset.name];
      if (!isFinite(m)) { g.classList.add('ovnan'); continue; }   // NaN or inf: black, as in the picture
      // six bands of a log scale: the largest in view, then each a factor 10 down; 0 is its own
      const band = m <= 0 || top <= 0 ? 0 : Math.max(1, 5 - Math.floor(Math.log10(top / m)));
      g.classList.add('ov' + band);
    }
    const box = $('#ovlegend');
    box.hidden = !ov;
    if (ov) {
      box.innerHTML = `<b>${OV_TEXT[ov]}</b> of each node; a folded node: the largest over the values its label ` +
        `summarises (its "grad a … b"; a boundary parameter: this view's share, "grad here")<br>` +
        [5, 4, 3, 2, 1].map((b) => `<span class="sw ov${b}"></span>${b === 5 ? '≤ ' + F.fmt(top) : '÷' + (10 ** (5 - b)) + (b === 1 ? ' and less' : '')}`).join(' ') +
        ' <span class="sw ov0"></span>0' + (broken ? ` <span class="sw ovnan"></span>NaN or inf (${broken})` : '');
    }
    $('#overlay').value = ov || '';
  }
  $('#overlay').addEventListener('change', (e) => P.setUrlState({ov: e.target.value || null}));

  // -- compare: before / after ----------------------------------------------------------------------
  $('#comparebtn').addEventListener('click', (e) => { e.stopPropagation(); $('#comparemenu').hidden = !$('#comparemenu').hidden; });
  $('#comparemenu').addEventListener('submit', (e) => {
    e.preventDefault();
    const how = e.submitter ? e.submitter.dataset.how : 'steps';
    const val = (how === 'ckpt' ? $('#cmpckpt') : $('#cmpsteps')).value.trim();
    if (!val) return;
    $('#comparemenu').hidden = true;
    const c = P.view.links.compare;
    P.typed(c.url, {[c.field]: `${how}:${val}`});
  });
  function drawCompare() {
    const bar = $('#comparebar');
    const c = P.view && P.view.compare;
    bar.hidden = !c;
    if (!c) { bar.innerHTML = ''; return; }
    if (c.first) {     // a lab or a comparison of two steps: where the two first diverge, and why
      bar.innerHTML = `<span class="mg-phase mg-phase-compare">${esc(c.labels[1])}</span> ` +
        c.first.notes.map((t, i) => i === 1 ? `<b class="first">${esc(t)}</b>` : esc(t)).join(' · ') +
        ` <button id="gofirst">show the first diverging node</button> <button id="leavecmp">leave</button>`;
      $('#gofirst').addEventListener('click', () => P.navigate(P.view.links.first));
      $('#leavecmp').addEventListener('click', () => P.navigate(P.view.links.leave_compare));
      return;
    }
    // which two models, in the bar itself: before is the page's model, after says how it was made
    bar.innerHTML = `<span class="mg-phase mg-phase-compare">before / after</span> ` +
      `<span id="cmpbefore">before: <b>${esc(c.models[0])}</b>, loss ${F.fixed(c.loss_before, 6)}</span> → ` +
      `<span id="cmpafter" title="${esc(c.models[2])}">after: <b>${esc(c.models[1])}</b>, loss ${F.fixed(c.loss_after, 6)}</span> · ` +
      `Δ = after − before (Δ loss <b id="dloss">${F.num(c.loss_delta) >= 0 ? '+' : ''}${F.fixed(c.loss_delta, 6)}</b>) ` +
      '<button id="leavecmp">leave compare</button>';
    $('#leavecmp').addEventListener('click', () => P.navigate(P.view.links.leave_compare));
  }

  Object.assign(P, {applyOverlay, drawCompare});
})(window.explorer.page);
