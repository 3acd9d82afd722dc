/* microgpt-graph tour page: stops (one inline SVG each), each played by stepper.js.
 * ←/→ one frame (past the end of a stop's range: the next stop), PageUp/PageDown
 * (or n/p) one stop, space play/pause, Home/End the ends of the stop's range.
 * The stop and position are kept in the URL hash (#stop=2&frame=14), so a reload
 * or a link returns to the same place. window.tour exposes the state for tests. */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('tour-data').textContent);
  var stops = data.stops;
  var $ = function (id) { return document.getElementById(id); };
  var players = {};
  var cur = -1, player = null;

  function range() { return stops[cur].range; }

  function showUpdate() {
    var s = stops[cur];
    var atEnd = !player || player.position() >= range()[1];
    var el = $('update');
    if (s.update && atEnd) {
      el.innerHTML = '<div class="mg-phase mg-phase-update">update</div>' + s.update;
      el.hidden = false;
    } else {
      el.innerHTML = '';
      el.hidden = true;
    }
  }

  function sync() {
    var r = range();
    var scrub = $('scrub');
    scrub.min = r[0]; scrub.max = r[1];
    scrub.value = player ? player.position() : 0;
    $('play').textContent = player && player.playing() ? 'pause' : 'play';
    $('where').textContent = 'stop ' + (cur + 1) + ' / ' + stops.length + ' \u00b7 ' + stops[cur].title
      + (player ? ' \u00b7 frame ' + player.position() + ' / ' + player.count : '');
    showUpdate();
    var h = '#stop=' + (cur + 1) + (player ? '&frame=' + player.position() : '');
    // the whole URL, not just '#...': in a srcdoc frame (a notebook's saved explorer) a bare fragment
    // would resolve against the embedding page's URL, which this document may not write
    if (location.hash !== h) history.replaceState(null, '', location.href.split('#')[0] + h);
  }

  function go(k, at) {
    k = Math.max(0, Math.min(stops.length - 1, k));
    if (player) player.pause();
    if (cur >= 0) $('stop-' + cur).hidden = true;
    cur = k;
    var sec = $('stop-' + k);
    sec.hidden = false;
    $('caption').textContent = stops[k].caption;
    var s = stops[k];
    if (s.frames && !players[k]) {
      players[k] = MicrogptStepper.attach(sec.querySelector('svg'), s.frames, {panel: $('panel')});
      players[k].onchange(function () { if (player === players[k]) sync(); });
      players[k].onchange(function (p) {
        if (p.playing() && p.position() >= stops[k].range[1]) p.pause();
      });
    }
    player = players[k] || null;
    if (!player) $('panel').innerHTML = '<div class="mg-phase">view</div>';
    if (player) player.seek(at === 'end' ? s.range[1] : (typeof at === 'number' ? at : s.range[0]));
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

  $('prev').onclick = function () { step(-1); };
  $('next').onclick = function () { step(1); };
  $('prev-stop').onclick = function () { go(cur - 1); };
  $('next-stop').onclick = function () { go(cur + 1); };
  $('play').onclick = toggle;
  $('scrub').oninput = function () { if (player) player.seek(+this.value); };
  $('speed').onchange = function () { Object.keys(players).forEach(function (k) { players[k].speed(+$('speed').value); }); };
  document.addEventListener('keydown', function (e) {
    if (e.target && e.target.tagName === 'INPUT' && e.target.type !== 'range') return;
    var k = e.key;
    if (k === 'ArrowRight') step(1);
    else if (k === 'ArrowLeft') step(-1);
    else if (k === 'PageDown' || k === 'n') go(cur + 1);
    else if (k === 'PageUp' || k === 'p') go(cur - 1);
    else if (k === ' ') toggle();
    else if (k === 'Home' && player) player.seek(range()[0]);
    else if (k === 'End' && player) player.seek(range()[1]);
    else return;
    e.preventDefault();
  });

  var m = /stop=(\d+)(?:&frame=(\d+))?/.exec(location.hash);
  go(m ? +m[1] - 1 : 0, m && m[2] !== undefined ? +m[2] : undefined);

  window.tour = {
    stops: stops.length,
    stop: function () { return cur; },
    go: go,
    step: step,
    player: function () { return player; }
  };
})();
