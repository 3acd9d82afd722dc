/* microgpt-graph stepper: play a view's frames (graphviz_export/steps/frames.py) on its SVG.
 *
 * Nothing is laid out again and nothing is computed here: a frame switches CSS classes on
 * the SVG's node and edge groups (ids node-<name>, edge-<src>-<dst>, set in the DOT:
 * graphviz_export/draw/ids.py), writes each node's data/grad field as the frames say it
 * reads at this position ('grad ?', 'grad += 0.2 (1/3)' or a narrower form, the final
 * text: steps/frame_texts.py), and puts the current edges' `local x upstream =
 * contribution` labels where the frames place them (steps/edge_labels.py). The slides of
 * a tour (web/tour/slides.py) apply the same frames the same way.
 *
 * Nothing gives a grad away before its frame: a node not reached is grey (stepper.css), a
 * heat-map's grad column (its 'parts') is hidden until the matrix's frame (always, forward),
 * and an edge's own label (a parameter's use, --edge-grads) until the frame it carries its
 * contribution (always, forward): classes mg-hidden and mg-pending on those elements.
 *
 *   const s = MicrogptStepper.attach(svgElement, framesJson, {panel: el, onchange: fn});
 *   s.play(); s.pause(); s.step(+1); s.seek(12); s.speed(2); s.position(); s.count;
 *   s.detach();   // restores the SVG as it was
 *   MicrogptStepper.paintUpdate(svg, heat); MicrogptStepper.clearUpdate(svg);
 *       // the update phase: a matrix's grad column repainted with its Δvalue (steps/update.py:
 *       // delta_heatmap: {rows: {svg id: [fill per column]}, line: [as drawn, in the update]}; a
 *       // heat-map the explorer's page painted (its heat.js: MicrogptHeat) is painted again so)
 *
 * Positions run 0..count: 0 is before the first frame (nothing computed yet),
 * p is "frames 0..p-1 done, frame p-1 current". Needs format.js (MicrogptFormat: the
 * pages' one escape and number format); no network.
 */
(function (root) {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var STATES = ['mg-pending', 'mg-current', 'mg-done'];
  var esc = root.MicrogptFormat.esc, fmt = root.MicrogptFormat.fmt;

  function attach(svg, frames, opts) {
    opts = opts || {};
    var mode = frames.mode;
    var list = frames.frames;
    var count = list.length;
    var nodeEls = {};          // name -> <g>
    var fields = {};           // name -> [{el, original, size, shown: [[p, text, scale?], ...]}]
    var edgeEls = {};          // svg id -> <g>
    var partEls = {};          // node name -> the elements it hides until its frame (a heat-map's grad column)
    var edgeFrame = {};        // svg id -> the frame whose edges light it (its contribution flows then)
    var added = [];            // overlay elements of the current frame
    var pos = 0, timer = null, rate = 1;
    var listeners = [];
    if (opts.onchange) listeners.push(opts.onchange);

    svg.classList.add('mg-stepper', 'mg-' + mode);
    Object.keys(frames.nodes).forEach(function (name) {
      var g = svg.querySelector('[id="node-' + name + '"]');
      if (!g) return;
      nodeEls[name] = g;
      var texts = Array.prototype.slice.call(g.querySelectorAll('text'));
      fields[name] = (frames.nodes[name].fields || []).map(function (f) {
        var el = texts.find(function (t) { return t.textContent === f.drawn; });
        return el ? {el: el, original: f.drawn, size: el.getAttribute('font-size'), shown: f.shown} : null;
      }).filter(Boolean);
    });
    Object.keys(frames.nodes).forEach(function (name) {
      var parts = (frames.nodes[name].parts || []).map(function (id) { return svg.querySelector('[id="' + id + '"]'); });
      partEls[name] = parts.filter(Boolean);
    });
    list.forEach(function (f) {
      f.edges.forEach(function (e) {
        var g = svg.querySelector('[id="' + e.svg + '"]');
        if (g) edgeEls[e.svg] = g;
        if (!(e.svg in edgeFrame)) edgeFrame[e.svg] = f.frame;
        if (e.via) { var r = svg.querySelector('[id="' + e.via + '"]'); if (r) edgeEls[e.via] = r; }
      });
    });
    var overlay = document.createElementNS(NS, 'g');
    overlay.setAttribute('class', 'mg-overlay');
    (svg.querySelector('g.graph') || svg).appendChild(overlay);

    // what field f reads at position p: its last entry from p or before ([p, text, scale?])
    function shownAt(f, p) {
      var got = f.shown[0];
      for (var i = 1; i < f.shown.length && f.shown[i][0] <= p; i++) got = f.shown[i];
      return got;
    }

    function setTexts(name, p) {
      (fields[name] || []).forEach(function (f) {
        var s = shownAt(f, p), el = f.el;
        // the product as is (String: the shortest form, as the slides' Python repr writes it)
        var size = s.length > 2 && f.size ? String(parseFloat(f.size) * s[2]) : f.size;
        if (el.textContent !== s[1]) el.textContent = s[1];
        if (size && el.getAttribute('font-size') !== size) el.setAttribute('font-size', size);
      });
    }

    function render() {
      var cur = pos > 0 ? list[pos - 1] : null;
      Object.keys(nodeEls).forEach(function (name) {
        var k = frames.nodes[name].frame;
        var state = k < pos - 1 ? 'mg-done' : k === pos - 1 ? 'mg-current' : 'mg-pending';
        var cl = nodeEls[name].classList;
        STATES.forEach(function (s) { if (s !== state) cl.remove(s); });
        cl.add(state);
        setTexts(name, pos);
        var hide = mode === 'forward' || k > pos - 1;
        partEls[name].forEach(function (el) { el.classList.toggle('mg-hidden', hide); });
      });
      Object.keys(edgeEls).forEach(function (id) {
        edgeEls[id].classList.remove('mg-active');
        edgeEls[id].classList.toggle('mg-pending', mode === 'forward' || edgeFrame[id] > pos - 1);
      });
      while (added.length) { var a = added.pop(); a.parentNode && a.parentNode.removeChild(a); }
      if (cur) {
        cur.edges.forEach(function (e) {
          var g = edgeEls[e.svg];
          if (e.via && edgeEls[e.via]) edgeEls[e.via].classList.add('mg-active');
          if (!g) return;
          g.classList.add('mg-active');
          if (mode !== 'backward' || !e.text || !e.at) return;
          var t = document.createElementNS(NS, 'text');
          t.setAttribute('class', 'mg-edge-label');
          t.setAttribute('x', e.at[0]);
          t.setAttribute('y', e.at[1]);
          t.textContent = e.text;
          overlay.appendChild(t);
          added.push(t);
        });
      }
      if (opts.panel) opts.panel.innerHTML = panelHtml(cur);
      listeners.forEach(function (fn) { fn(api); });
    }

    function nodeLabel(name) {
      var n = frames.nodes[name];
      return n.label ? n.label : (n.kind + ' ' + name + (n.values ? ' (' + n.values + ' values)' : ''));
    }

    function panelHtml(cur) {
      var h = '<div class="mg-phase mg-phase-' + mode + '">' + mode + '</div>';
      h += '<p class="mg-hint">' + (mode === 'backward' ? '<b>grad ?</b>: not yet computed; '
        + '<b>grad += s (k/n)</b>: k of its n contributions are in' : '<b>data ?</b>: not yet computed') + '</p>';
      h += '<div class="mg-frame">frame <b class="mg-frame-no">' + pos + '</b> / ' + count + '</div>';
      if (!cur) {
        return h + '<p>' + (mode === 'backward' ? 'No grad computed yet. The first frame starts from '
          + (frames.loss ? 'the loss, whose grad is 1.' : 'the view\u2019s outputs, whose grads come from outside it.')
          : 'No value computed yet.') + '</p>';
      }
      var info = frames.nodes[cur.node];
      h += '<p class="mg-node">' + esc(nodeLabel(cur.node)) + '</p>';
      if (mode === 'backward') {
        if (cur.grad !== undefined) h += '<p>grad final: <b class="mg-grad">' + esc(String(cur.grad)) + '</b></p>';
        if (info.ledger && info.ledger.length > 1) {
          h += '<table class="mg-ledger"><tr><th>grad +=</th><th>from</th><th>sum</th></tr>';
          info.ledger.forEach(function (r) {
            h += '<tr><td>' + esc(fmt(r[3])) + '</td><td>' + esc(r[1] === 'outside' ? 'outside the view' : nodeLabel(r[1]))
              + '</td><td>' + (r[4] === null ? '' : esc(String(r[4]))) + '</td></tr>';
          });
          h += '</table>';
        }
        if (cur.edges.length) {
          h += '<ul class="mg-edges">';
          cur.edges.forEach(function (e) {
            h += '<li>to ' + esc(nodeLabel(e.src)) + ': ' + esc(e.text) + '</li>';
          });
          h += '</ul>';
        }
      } else if (cur.data !== undefined) {
        h += '<p>value: <b>' + esc(String(cur.data)) + '</b></p>';
      }
      return h;
    }

    function seek(p) {
      p = Math.max(0, Math.min(count, p | 0));
      pos = p;
      render();
      return pos;
    }

    function pause() { if (timer) { clearInterval(timer); timer = null; } }

    var api = {
      count: count,
      mode: mode,
      position: function () { return pos; },
      playing: function () { return timer !== null; },
      seek: seek,
      step: function (d) { return seek(pos + (d === undefined ? 1 : d)); },
      play: function () {
        pause();
        if (pos >= count) seek(0);
        timer = setInterval(function () {
          if (pos >= count) { pause(); render(); return; }
          seek(pos + 1);
        }, 600 / rate);
      },
      pause: function () { pause(); render(); },
      speed: function (x) {
        if (x !== undefined) { rate = Math.max(0.1, Math.min(20, +x)); if (timer) api.play(); }
        return rate;
      },
      onchange: function (fn) { listeners.push(fn); },
      detach: function () {
        pause();
        Object.keys(nodeEls).forEach(function (name) {
          STATES.forEach(function (s) { nodeEls[name].classList.remove(s); });
          (fields[name] || []).forEach(function (f) {
            f.el.textContent = f.original;
            if (f.size) f.el.setAttribute('font-size', f.size);
          });
        });
        Object.keys(edgeEls).forEach(function (id) { edgeEls[id].classList.remove('mg-active', 'mg-pending'); });
        Object.keys(partEls).forEach(function (n) { partEls[n].forEach(function (el) { el.classList.remove('mg-hidden'); }); });
        overlay.parentNode && overlay.parentNode.removeChild(overlay);
        svg.classList.remove('mg-stepper', 'mg-' + mode);
      }
    };
    seek(opts.start || 0);
    return api;
  }

  // -- the update phase: a matrix's grad column shows its Δvalue -------------------------------
  function paintUpdate(svg, heat) {
    if (!heat) return;
    // a heat-map the explorer's page painted (its heat.js): painted again, row by row
    var painted = root.MicrogptHeat && root.MicrogptHeat.painted(svg);
    if (painted) root.MicrogptHeat.paintRows(svg, heat.rows);
    Object.keys(heat.rows).forEach(function (id) {
      var g = svg.querySelector('[id="' + id + '"]');
      if (!g) return;
      g.classList.add('mg-delta');
      if (painted) return;
      var fills = heat.rows[id];
      Array.prototype.slice.call(g.querySelectorAll('polygon')).slice(0, fills.length).forEach(function (p, k) {
        if (!p.hasAttribute('data-fill')) p.setAttribute('data-fill', p.getAttribute('fill'));
        p.setAttribute('fill', fills[k]);
      });
    });
    swapText(svg, heat.line[0], heat.line[1]);
  }
  function clearUpdate(svg, heat) {
    if (root.MicrogptHeat) root.MicrogptHeat.restore(svg);
    Array.prototype.slice.call(svg.querySelectorAll('g.mg-delta')).forEach(function (g) {
      g.classList.remove('mg-delta');
      Array.prototype.slice.call(g.querySelectorAll('polygon[data-fill]')).forEach(function (p) {
        p.setAttribute('fill', p.getAttribute('data-fill'));
        p.removeAttribute('data-fill');
      });
    });
    if (heat) swapText(svg, heat.line[1], heat.line[0]);
  }
  function swapText(svg, from, to) {
    Array.prototype.slice.call(svg.querySelectorAll('g.cluster text')).forEach(function (t) {
      if (t.textContent === from) t.textContent = to;
    });
  }

  root.MicrogptStepper = {attach: attach, paintUpdate: paintUpdate, clearUpdate: clearUpdate};
})(typeof window !== 'undefined' ? window : this);
