/* microgpt-graph stepper: play a view's frames (graphviz_export/steps/frames.py) on its SVG.
 *
 * Nothing is laid out again: a frame only switches CSS classes on the SVG's node
 * and edge groups (ids node-<name>, edge-<src>-<dst>; graphviz_export/steps/svg_ids.py),
 * rewrites the "grad ..." / "data ..." text of nodes not yet computed ('grad ?', or
 * 'grad += 0.2 (1/3)': the ledger's sum so far, 1 of 3 contributions in), and puts
 * the current edges' `local x upstream = contribution` labels on them, clear of the nodes.
 *
 *   const s = MicrogptStepper.attach(svgElement, framesJson, {panel: el, onchange: fn});
 *   s.play(); s.pause(); s.step(+1); s.seek(12); s.speed(2); s.position(); s.count;
 *   s.detach();   // restores the SVG as it was
 *
 * Positions run 0..count: 0 is before the first frame (nothing computed yet),
 * p is "frames 0..p-1 done, frame p-1 current". No dependencies, no network.
 */
(function (root) {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var STATES = ['mg-pending', 'mg-current', 'mg-done'];

  function fmt(x) {
    if (typeof x === 'string') return x;
    if (x === null || x === undefined) return '?';
    if (x === 0) return '0';
    var a = Math.abs(x);
    return (a >= 1e-3 && a < 1e4) ? String(Number(x.toPrecision(4))) : x.toExponential(3);
  }

  function attach(svg, frames, opts) {
    opts = opts || {};
    var mode = frames.mode;
    var list = frames.frames;
    var count = list.length;
    var nodeEls = {};          // name -> <g>
    var texts = {};            // name -> [{el, original, kind: 'grad'|'data'}]
    var edgeEls = {};          // svg id -> <g>
    var added = [];            // overlay elements of the current frame
    var pos = 0, timer = null, rate = 1;
    var listeners = [];
    if (opts.onchange) listeners.push(opts.onchange);

    svg.classList.add('mg-stepper', 'mg-' + mode);
    Object.keys(frames.nodes).forEach(function (name) {
      var g = svg.querySelector('[id="node-' + name + '"]');
      if (!g) return;
      nodeEls[name] = g;
      var ts = [];
      g.querySelectorAll('text').forEach(function (t) {
        var s = t.textContent;
        if (s.indexOf('grad ') === 0) ts.push({el: t, original: s, kind: 'grad'});
        else if (s.indexOf('data ') === 0) ts.push({el: t, original: s, kind: 'data'});
      });
      texts[name] = ts;
    });
    list.forEach(function (f) {
      f.edges.forEach(function (e) {
        var g = svg.querySelector('[id="' + e.svg + '"]');
        if (g) edgeEls[e.svg] = g;
        if (e.via) { var r = svg.querySelector('[id="' + e.via + '"]'); if (r) edgeEls[e.via] = r; }
      });
    });
    var overlay = document.createElementNS(NS, 'g');
    overlay.setAttribute('class', 'mg-overlay');
    (svg.querySelector('g.graph') || svg).appendChild(overlay);

    // the sum shown for node `name` at position p: [sum, arrived, total] or null
    function partial(name, p) {
      var info = frames.nodes[name];
      if (!info.ledger) return null;
      var sum = null, arrived = 0;
      info.ledger.forEach(function (row) {
        if (row[0] <= p - 1) { arrived += 1; if (row[4] !== null) sum = row[4]; }
      });
      return arrived ? [sum, arrived, info.ledger.length] : null;
    }

    // the width a text may take: its original's (what Graphviz sized the field for) plus the
    // field's margin, and the original's width per character; read once, for every text at once
    var measured = false;
    function measureTexts() {
      measured = true;
      Object.keys(texts).forEach(function (name) {
        texts[name].forEach(function (t) {
          var len = t.el.getComputedTextLength ? t.el.getComputedTextLength() : 0;
          t.size = t.el.getAttribute('font-size');
          t.room = len + 6;
          t.cw = t.original.length ? len / t.original.length : 0;
        });
      });
    }

    // write `s` in place of text t's original; a running sum ('grad += -0.6111 (2/3)') is wider
    // than the field Graphviz sized for 'grad 0.2': it drops its count, then its 'grad ', and
    // shrinks (to 80% at least) until it fits. Widths are estimated from the original's width
    // per character, so a frame reads no layout while it writes.
    function show(t, s) {
      var el = t.el;
      if (t.size) el.setAttribute('font-size', t.size);
      el.textContent = s;
      if (s === t.original || !t.cw || !t.size) return;
      var m = /^grad \+= (\S+) \(\d+\/\d+\)$/.exec(s);
      var variants = m ? [s, '+= ' + m[1] + s.slice(s.lastIndexOf(' ')), '+= ' + m[1]] : [s];
      for (var i = 0; i < variants.length; i++) {
        var len = t.cw * variants[i].length;
        if (len <= t.room || len * 0.8 <= t.room || i === variants.length - 1) {
          el.textContent = variants[i];
          if (len > t.room) el.setAttribute('font-size', (parseFloat(t.size) * t.room / len).toFixed(2));
          return;
        }
      }
    }

    function setText(name, p, state) {
      var info = frames.nodes[name];
      (texts[name] || []).forEach(function (t) {
        var s = t.original;
        if (mode === 'backward' && t.kind === 'grad' && state !== 'mg-done' && state !== 'mg-current') {
          var part = partial(name, p);
          s = part ? 'grad += ' + fmt(part[0]) + ' (' + part[1] + '/' + part[2] + ')' : 'grad ?';
        } else if (mode === 'forward' && t.kind === 'grad') {
          s = 'grad ?';
        } else if (mode === 'forward' && t.kind === 'data' && state === 'mg-pending') {
          s = 'data ?';
        }
        if (t.el.textContent !== s) show(t, s);
      });
      return info;
    }

    // node boxes in the graph's coordinates, measured once: labels keep off them
    var boxes = null;
    function nodeBoxes() {
      if (!boxes) {
        boxes = [];
        svg.querySelectorAll('g.node').forEach(function (n) {
          try { var b = n.getBBox(); boxes.push(b); } catch (e) { /* not rendered */ }
        });
      }
      return boxes;
    }
    function overlaps(a, b) {
      return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    }

    // where to put a label on edge `g`: where its text is clear of every node box and of the
    // labels already placed: on the path (its middle, then 35%, 65%, 20%, 80%, 10%, 90% of
    // its length), else one, two or three lines above or below those points; the middle when
    // nothing is clear. `b0` is the text's box at (0, 0), `points` the path's points at those
    // fractions (read beforehand: placing writes only). Returns [x, y, box].
    var FRACTIONS = [0.5, 0.35, 0.65, 0.2, 0.8, 0.1, 0.9];
    var LINES = [0, -1, 1, -2, 2, -3, 3];
    function pathPoints(g) {
      var path = g.querySelector('path');
      if (!path || !path.getTotalLength) return null;
      var L = path.getTotalLength();
      return FRACTIONS.map(function (f) { return path.getPointAtLength(L * f); });
    }
    function place(b0, points, placed) {
      var clear = nodeBoxes().concat(placed), step = b0.height + 2;
      for (var i = 0; i < LINES.length; i++) {
        for (var j = 0; j < points.length; j++) {
          var x = points[j].x, y = points[j].y - 3 + LINES[i] * step;
          var b = {x: b0.x + x, y: b0.y + y, width: b0.width, height: b0.height};
          if (!clear.some(function (c) { return overlaps(b, c); })) return [x, y, b];
        }
      }
      var x0 = points[0].x, y0 = points[0].y - 3;
      return [x0, y0, {x: b0.x + x0, y: b0.y + y0, width: b0.width, height: b0.height}];
    }

    function render() {
      var cur = pos > 0 ? list[pos - 1] : null;
      if (!measured) { measureTexts(); nodeBoxes(); }   // reads, before this frame writes
      Object.keys(nodeEls).forEach(function (name) {
        var k = frames.nodes[name].frame;
        var state = k < pos - 1 ? 'mg-done' : k === pos - 1 ? 'mg-current' : 'mg-pending';
        var cl = nodeEls[name].classList;
        STATES.forEach(function (s) { if (s !== state) cl.remove(s); });
        cl.add(state);
        setText(name, pos, state);
      });
      Object.keys(edgeEls).forEach(function (id) { edgeEls[id].classList.remove('mg-active'); });
      while (added.length) { var a = added.pop(); a.parentNode && a.parentNode.removeChild(a); }
      if (cur) {
        var labels = [];
        cur.edges.forEach(function (e) {   // writes: classes, and each label's text at (0, 0)
          var g = edgeEls[e.svg];
          if (e.via && edgeEls[e.via]) edgeEls[e.via].classList.add('mg-active');
          if (!g) return;
          g.classList.add('mg-active');
          if (mode !== 'backward' || !e.text) return;
          var t = document.createElementNS(NS, 'text');
          t.setAttribute('class', 'mg-edge-label');
          t.textContent = e.text;
          overlay.appendChild(t);
          added.push(t);
          labels.push([t, g]);
        });
        var measuredLabels = labels.map(function (l) { return [l[0], l[0].getBBox(), pathPoints(l[1])]; });
        var placed = [];
        measuredLabels.forEach(function (m) {   // then arithmetic and writes only
          if (!m[2]) { m[0].parentNode.removeChild(m[0]); return; }
          var at = place(m[1], m[2], placed);
          m[0].setAttribute('x', at[0]); m[0].setAttribute('y', at[1]);
          placed.push(at[2]);
        });
      }
      if (opts.panel) opts.panel.innerHTML = panelHtml(cur);
      listeners.forEach(function (fn) { fn(api); });
    }

    function esc(s) {
      return String(s).replace(/[&<>"]/g, function (c) {
        return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c];
      });
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
          (texts[name] || []).forEach(function (t) {
            t.el.textContent = t.original;
            if (t.size) t.el.setAttribute('font-size', t.size);
          });
        });
        Object.keys(edgeEls).forEach(function (id) { edgeEls[id].classList.remove('mg-active'); });
        overlay.parentNode && overlay.parentNode.removeChild(overlay);
        svg.classList.remove('mg-stepper', 'mg-' + mode);
      }
    };
    seek(opts.start || 0);
    return api;
  }

  root.MicrogptStepper = {attach: attach, format: fmt};
})(typeof window !== 'undefined' ? window : this);
