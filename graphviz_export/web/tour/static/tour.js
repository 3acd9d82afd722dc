/* microgpt-graph tour page: stops (one inline SVG each), each played by stepper.js.
 * ←/→ one frame (past the end of a stop's range: the next stop), PageUp/PageDown
 * (or n/p) one stop, space play/pause, Home/End the ends of the stop's range.
 * The camera (viewbox.js, MicrogptCamera: the explorer's) pans and zooms each stop's SVG: wheel
 * or + / − zoom, a drag pans, f fits, c recentres; every frame's lit node is kept in view with its
 * lit edges where the scale allows, the text never smaller than 11 px (16 px presenting).
 * P (Shift+p) or the Present button: presentation mode (the chrome one thin line, the caption
 * large; the tour file's `present = true` opens in it; Esc leaves). The stop, position and mode
 * are kept in the URL hash (#stop=2&frame=14&present=1), so a reload or a link returns to the
 * same place. window.tour exposes the state for tests. */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('tour-data').textContent);
  var stops = data.stops;
  var $ = function (id) { return document.getElementById(id); };
  var players = {}, cams = {};
  var cur = -1, player = null, presenting = false;
  var READABLE = 11, PRESENT_PX = 16.5;

  function range() { return stops[cur].range; }
  function svgOf(k) { return $('stop-' + k).querySelector('svg'); }
  function cam() { return cams[cur] || null; }

  // -- the camera --------------------------------------------------------------------------------
  function camera(k) {
    if (!cams[k]) cams[k] = MicrogptCamera.attach(svgOf(k), $('stage'), {});
    return cams[k];
  }
  // the smallest node text of stop k in drawing units (a running sum shrinks to fit: frame_texts.py)
  function smallestUnits(k) {
    var least = Infinity, shrink = 1, f = stops[k].frames;
    Array.prototype.forEach.call(svgOf(k).querySelectorAll('g.node text[font-size]'), function (t) {
      least = Math.min(least, parseFloat(t.getAttribute('font-size')));
    });
    if (f) Object.keys(f.nodes).forEach(function (n) {
      (f.nodes[n].fields || []).forEach(function (fl) { fl.shown.forEach(function (e) { if (e.length > 2) shrink = Math.min(shrink, e[2]); }); });
    });
    return isFinite(least) ? least * shrink : 9;
  }
  function minScale() { return cur < 0 ? 0 : (presenting ? PRESENT_PX : READABLE) / smallestUnits(cur); }
  var find = function (name) { return svgOf(cur).querySelector('[id="node-' + name + '"]'); };
  // the frame on screen (at 0: the first, where backward starts), its lit node in view
  function follow(animate) {
    var c = cam(), s = stops[cur];
    if (!c) return;
    if (!s.frames || !s.frames.frames.length) {
      if (c.scale() < minScale()) { var w = c.whole(); c.follow({x: w.x + w.w / 2, y: w.y + w.h / 2, w: 1, h: 1}, null, {minScale: minScale(), animate: animate}); }
      return;
    }
    var list = s.frames.frames, p = player ? player.position() : 0;
    var f = list[Math.max(0, Math.min(list.length, p) - 1)] || list[0];
    var b = MicrogptCamera.frameBoxes(svgOf(cur), f, find);
    if (b && b.must) c.follow(b.must, b.want, {minScale: minScale(), animate: animate});
  }
  // a stop shown: the whole of it when readable so, else readable around its frame
  function home() {
    var c = camera(cur);
    c.fitBox(c.whole(), 1.6);
    follow(false);
  }

  // -- the update phase ---------------------------------------------------------------------------
  function showUpdate() {
    var s = stops[cur];
    var atEnd = !player || player.position() >= range()[1];
    var el = $('update');
    var svg = svgOf(cur);
    if (s.update && atEnd) {
      el.innerHTML = '<div class="mg-phase mg-phase-update">update</div>' + s.update;
      el.hidden = false;
      MicrogptStepper.paintUpdate(svg, s.heat);
    } else {
      el.innerHTML = '';
      el.hidden = true;
      MicrogptStepper.clearUpdate(svg, s.heat);
    }
  }

  function sync() {
    var r = range();
    var scrub = $('scrub');
    scrub.min = r[0]; scrub.max = r[1];
    scrub.value = player ? player.position() : 0;
    $('play').textContent = player && player.playing() ? 'pause' : 'play';
    $('pplay').textContent = player && player.playing() ? '\u23f8' : '\u25b6';
    $('where').textContent = 'stop ' + (cur + 1) + ' / ' + stops.length + ' \u00b7 ' + stops[cur].title
      + (player ? ' \u00b7 frame ' + player.position() + ' / ' + player.count : '');
    showUpdate();
    var h = '#stop=' + (cur + 1) + (player ? '&frame=' + player.position() : '') + (presenting ? '&present=1' : '');
    // the whole URL, not just '#...': in a srcdoc frame (a notebook's saved explorer) a bare fragment
    // would resolve against the embedding page's URL, which this document may not write
    if (location.hash !== h) history.replaceState(null, '', location.href.split('#')[0] + h);
  }

  function go(k, at) {
    k = Math.max(0, Math.min(stops.length - 1, k));
    if (player) player.pause();
    if (cur >= 0) $('stop-' + cur).hidden = true;
    var first = cur !== k;
    cur = k;
    var sec = $('stop-' + k);
    sec.hidden = false;
    $('caption').textContent = stops[k].caption;
    var s = stops[k];
    if (s.frames && !players[k]) {
      players[k] = MicrogptStepper.attach(sec.querySelector('svg'), s.frames, {panel: $('panel')});
      players[k].onchange(function () { if (player === players[k]) { sync(); follow(true); } });
      players[k].onchange(function (p) {
        if (p.playing() && p.position() >= stops[k].range[1]) p.pause();
      });
    }
    player = players[k] || null;
    if (!player) $('panel').innerHTML = '<div class="mg-phase">view</div>';
    if (player) player.seek(at === 'end' ? s.range[1] : (typeof at === 'number' ? at : s.range[0]));
    if (first || !cams[k]) home();
    sync();
  }

  function step(d) {
    if (!player) { go(cur + d, d < 0 ? 'end' : 'start'); return; }
    var p = player.position() + d, r = range();
    if (p > r[1]) { if (cur < stops.length - 1) go(cur + 1, 'start'); return; }
    if (p < r[0]) { if (cur > 0) go(cur - 1, 'end'); return; }
    player.seek(p);
  }

  function toggle() {
    if (!player) return;
    if (player.playing()) player.pause();
    else {
      if (player.position() >= range()[1]) player.seek(range()[0]);
      player.play();
    }
    sync();
  }

  // -- presentation mode ------------------------------------------------------------------------
  function present(on) {
    presenting = on === undefined ? !presenting : !!on;
    document.body.classList.toggle('present', presenting);
    $('presentbtn').classList.toggle('on', presenting);
    Object.keys(cams).forEach(function (k) { cams[k].reframe(); });
    if (cur >= 0) { follow(false); sync(); }
  }

  // a click on a node: the frame that lights it
  $('stage').addEventListener('click', function (e) {
    if (pointer.dragged) { pointer.dragged = false; return; }
    var g = e.target.closest && e.target.closest('g.node, g.cluster');
    if (!g || !player) return;
    var name = g.id.replace(/^node-/, '').replace(/^(m\d+)_[dgl]\d+$/, '$1');
    var info = stops[cur].frames.nodes[name];
    if (info) player.seek(Math.max(range()[0], Math.min(range()[1], info.frame + 1)));
  });
  var pointer = MicrogptCamera.bindPointer($('stage'), cam, {skip: function (e) { return !!e.target.closest('.camera'); }});
  window.addEventListener('resize', function () { if (cam()) cam().reframe(); });

  $('prev').onclick = function () { step(-1); };
  $('next').onclick = function () { step(1); };
  $('prev-stop').onclick = function () { go(cur - 1); };
  $('next-stop').onclick = function () { go(cur + 1); };
  $('play').onclick = toggle;
  $('pprev').onclick = function () { step(-1); };
  $('pnext').onclick = function () { step(1); };
  $('pplay').onclick = toggle;
  $('pexit').onclick = function () { present(false); };
  $('presentbtn').onclick = function () { present(); };
  $('zoomin').onclick = function () { if (cam()) cam().zoomAt(1 / 1.25); };
  $('zoomout').onclick = function () { if (cam()) cam().zoomAt(1.25); };
  $('fit').onclick = function () { if (cam()) cam().fitBox(cam().whole(), 1.6); };
  $('scrub').oninput = function () { if (player) player.seek(+this.value); };
  $('speed').onchange = function () { Object.keys(players).forEach(function (k) { players[k].speed(+$('speed').value); }); };
  document.addEventListener('keydown', function (e) {
    if (e.target && e.target.tagName === 'INPUT' && e.target.type !== 'range') return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key;
    if (k === 'ArrowRight') step(1);
    else if (k === 'ArrowLeft') step(-1);
    else if (k === 'PageDown' || k === 'n') go(cur + 1);
    else if (k === 'PageUp' || k === 'p') go(cur - 1);
    else if (k === ' ') toggle();
    else if (k === 'Home' && player) player.seek(range()[0]);
    else if (k === 'End' && player) player.seek(range()[1]);
    else if (k === 'P') present();
    else if (k === 'Escape' && presenting) present(false);
    else if (k === 'c' && cam()) { cam().prefer(null); follow(true); }
    else if (k === 'f' && cam()) cam().fitBox(cam().whole(), 1.6);
    else if ((k === '+' || k === '=') && cam()) cam().zoomAt(1 / 1.25);
    else if ((k === '-' || k === '_') && cam()) cam().zoomAt(1.25);
    else return;
    e.preventDefault();
  });

  var m = /stop=(\d+)(?:&frame=(\d+))?/.exec(location.hash);
  present(/present=1/.test(location.hash) || (!/present=0/.test(location.hash) && !!data.present));
  go(m ? +m[1] - 1 : 0, m && m[2] !== undefined ? +m[2] : undefined);

  window.tour = {
    stops: stops.length,
    stop: function () { return cur; },
    go: go,
    step: step,
    player: function () { return player; },
    camera: cam,
    presenting: function () { return presenting; },
    present: present,
    minScale: minScale
  };
})();
