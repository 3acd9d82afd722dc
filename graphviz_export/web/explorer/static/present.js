/* microgpt-graph explorer: presentation mode (a lecture on a projector).
 *
 * `P` (Shift+p), the Present button, or present=1 in the URL: the chrome folds to one thin line
 * (#presentbar: the view's title large, the step-through's frame under it, the few controls a
 * lecture needs), the side panel and the minimap step aside, and the camera keeps every node text
 * at 16 px or more (camera.js: minScale) while it follows the step-through. The view is laid out
 * for the screen's shape: the page asks for the aspect nearest the window's (the spec's `aspect`:
 * 16:9, 16:10, 4:3, 3:4; draw/page.py picks the direction that fills it best). Esc or the ✕ leaves.
 *
 * Loaded before explorer.js, so that a URL with present=1 asks for its aspect in the very first
 * request (window.explorerFirstQuery); the rest attaches to the page (window.explorer.page) once
 * every part is in (DOMContentLoaded).
 */
(function () {
  'use strict';
  const ASPECTS = {'16:9': 16 / 9, '16:10': 16 / 10, '4:3': 4 / 3, '3:4': 3 / 4};
  const BAR_PX = 56;                 // the presentation bar's height, about

  // the aspect of the spec nearest the screen's shape (the window, less the bar)
  function nearestAspect() {
    const r = window.innerWidth / Math.max(1, window.innerHeight - BAR_PX);
    let best = '16:9';
    for (const [name, x] of Object.entries(ASPECTS)) {
      if (Math.abs(Math.log(r / x)) < Math.abs(Math.log(r / ASPECTS[best]))) best = name;
    }
    return best;
  }
  // the first request of a URL with present=1 and no aspect asks for the screen's
  window.explorerFirstQuery = (q) => {
    const p = new URLSearchParams(q);
    if (p.get('present') !== '1' || p.has('aspect')) return q;
    return q + (q ? '&' : '') + 'aspect=' + encodeURIComponent(nearestAspect()).replace('%3A', ':');
  };

  document.addEventListener('DOMContentLoaded', () => {
    const ex = window.explorer, P = ex.page, $ = P.$, esc = P.esc;
    const bar = document.createElement('div');
    bar.id = 'presentbar';
    bar.hidden = true;
    bar.innerHTML = '<div class="cap"><div id="pcaption"></div><div id="pframe"></div></div>' +
      '<div class="ctl"><button id="pprev" title="one frame back (←)">◀</button>' +
      '<button id="pplay" title="play / pause (Space)">▶</button><button id="pnext" title="one frame on (→)">▶|</button>' +
      '<button id="pstep" title="step through backprop (s)">step through</button>' +
      '<button id="pcentre" title="recentre on the frame (c)">◎</button>' +
      '<button id="pexit" title="leave presentation mode (Esc)">✕</button></div>';
    document.body.insertBefore(bar, document.querySelector('main'));

    const presenting = () => P.state.present === '1';
    const st = () => window.stepthrough;
    function toggle(on) {
      if (on === undefined) on = !presenting();
      ex.setState(on ? {present: 1, aspect: nearestAspect()} : {present: null, aspect: null});
    }
    // the class, the bar and the camera, as the URL says (explorer.js calls it before the camera moves)
    function applyPresent() {
      const on = presenting();
      const was = document.body.classList.contains('present');
      document.body.classList.toggle('present', on);
      bar.hidden = !on;
      $('#presentbtn').classList.toggle('on', on);
      if (on) caption();
      if (was !== on) P.reframe();
    }
    // the caption: the view's title; while stepping, the frame under it
    function caption() {
      if (!presenting() || !P.view) return;
      $('#pcaption').textContent = P.view.title;
      $('#pcaption').title = P.view.title;
      const s = st();
      const open = s && s.open();
      $('#pstep').hidden = !!open || !!P.state.cmp;
      for (const id of ['#pprev', '#pplay', '#pnext', '#pcentre']) $(id).hidden = !open;
      if (!open) { $('#pframe').textContent = ''; return; }
      const f = s.frames(), n = s.count(), p = s.position(), ph = s.phase();
      const cur = p > 0 && p <= n ? f.frames[p - 1] : null;
      const info = cur ? f.nodes[cur.node] : null;
      const what = info ? (info.label || cur.node) : '';
      const val = cur ? (ph === 'forward' ? cur.data : cur.grad) : undefined;
      $('#pframe').innerHTML = `<span class="mg-phase mg-phase-${ph}">${esc(ph)}</span> ` +
        (ph === 'update' ? 'Adam\u2019s step on the parameters in view' :
          `frame ${p} / ${n}${what ? ' \u00b7 ' + esc(what) : ''}` +
          (val !== undefined ? ` \u00b7 ${ph === 'forward' ? 'value' : 'grad final'} ${esc(window.MicrogptFormat.fmt(val))}` : ''));
      $('#pplay').textContent = s.playing() ? '⏸' : '▶';
    }
    P.presenting = presenting;
    P.applyPresent = applyPresent;
    ex.on('view', () => { applyPresent(); caption(); });
    document.addEventListener('explorer:frame', caption);      // each frame, by any route (stepthrough.js)

    $('#presentbtn').addEventListener('click', () => toggle());
    $('#pexit').addEventListener('click', () => toggle(false));
    $('#pprev').addEventListener('click', () => { st().step(-1); caption(); });
    $('#pnext').addEventListener('click', () => { st().step(1); caption(); });
    $('#pplay').addEventListener('click', () => { if (st().playing()) st().pause(); else st().play(); caption(); });
    $('#pstep').addEventListener('click', () => ex.setState({frame: 0, mode: null}));
    $('#pcentre').addEventListener('click', () => { if (P.cam) P.cam.prefer(null); st().follow(); });
    document.addEventListener('keydown', (e) => {
      if (e.target.closest('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'P') { toggle(); e.preventDefault(); return; }
      if (e.key === 'Escape' && presenting() && $('#help').hidden && $('#results').hidden && !P.state.sel) {
        toggle(false);
      }
    });
    window.present = {on: presenting, toggle, aspect: nearestAspect};
  });
})();
