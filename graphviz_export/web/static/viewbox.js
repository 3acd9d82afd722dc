/* microgpt-graph camera: pan and zoom an SVG by its viewBox, and follow what a frame lights.
 *
 * Shared by the explorer (explorer/static/camera.js builds its fit, home, minimap on it) and the
 * tour's player (tour.js); nothing is laid out again, the SVG's viewBox moves.
 *
 *   const cam = MicrogptCamera.attach(svg, boxElement, {onchange: fn, top: () => px, size: () => {w, h} | null});
 *   cam.fitBox(box, maxScale); cam.zoomAt(factor, clientX, clientY); cam.pan(dxPx, dyPx);
 *   cam.follow(mustBox, wantBox, {minScale}); cam.reframe(); cam.scale(); cam.vb(); cam.whole();
 *   MicrogptCamera.boxOf(svg, elements)    the union of their boxes, in viewBox units
 *   MicrogptCamera.shapeBox(element)       a node's box from its shapes' points (its getBBox, no layout)
 *   MicrogptCamera.bindPointer(el, cam, {skip, skipWheel})   wheel zooms at the pointer, a drag pans
 *
 * Following a frame (the step-through, the tour): the lit node (`must`) is always in view; its
 * lit edges' other ends and labels (`want`) too when they fit. The camera keeps the scale the
 * user chose (prefer) and zooms out only as far as `want` needs, never below `minScale`
 * (presentation mode: the smallest text at 16 px); it moves as little as keeps them in view,
 * in a smooth pan (ANIMATE_MS, eased), which a new frame retargets from where it is.
 * No dependencies; no network. */
(function (root) {
  'use strict';
  var ANIMATE_MS = 240;
  var PAD_PX = 24;           // room kept around what the camera follows

  function union(a, b) {
    if (!a) return b;
    if (!b) return a;
    var x0 = Math.min(a.x, b.x), y0 = Math.min(a.y, b.y);
    return {x: x0, y: y0, w: Math.max(a.x + a.w, b.x + b.w) - x0, h: Math.max(a.y + a.h, b.y + b.h) - y0};
  }

  // the box of one drawn element in its own units (as getBBox: {x, y, width, height}). A node's or a
  // cluster's is the box of the shapes Graphviz wrote for it (polygon and path points, ellipses; a
  // record's separators, polylines, lie inside them), read from their attributes: Graphviz draws
  // a node's text inside its shape, so this is its getBBox, without asking the browser to lay out
  // the drawing (on a big view each such layout costs tens of ms). A text-only node, an edge or a
  // label: its getBBox.
  var NUMBER = /-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?/gi;
  function shapeBox(el) {
    var shapes = el.matches('g.node, g.cluster') ? el.querySelectorAll('polygon, path, ellipse') : [];
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (var k = 0; k < shapes.length; k++) {
      var s = shapes[k], xy;
      if (s.tagName === 'ellipse') {
        var cx = +s.getAttribute('cx'), cy = +s.getAttribute('cy'), rx = +s.getAttribute('rx'), ry = +s.getAttribute('ry');
        xy = [cx - rx, cy - ry, cx + rx, cy + ry];
      } else {
        var text = s.getAttribute(s.tagName === 'path' ? 'd' : 'points') || '';
        if (/[^MCLZ\d\s,.eE+-]/.test(text)) return el.getBBox();    // a path Graphviz does not write: the browser's box
        xy = (text.match(NUMBER) || []).map(Number);
      }
      for (var j = 0; j + 1 < xy.length; j += 2) {
        x0 = Math.min(x0, xy[j]); x1 = Math.max(x1, xy[j]); y0 = Math.min(y0, xy[j + 1]); y1 = Math.max(y1, xy[j + 1]);
      }
    }
    return x0 <= x1 ? {x: x0, y: y0, width: x1 - x0, height: y1 - y0} : el.getBBox();
  }

  // the box of these elements (<g> of nodes, edges, clusters) in viewBox units: their box (shapeBox)
  // is in the coordinates of the graph group (Graphviz translates it), mapped through its transform
  function boxOf(svg, els) {
    var rootG = svg.querySelector('g.graph');
    var m = rootG && rootG.transform.baseVal.consolidate();
    var M = m ? m.matrix : new DOMMatrix();
    var out = null;
    els.forEach(function (g) {
      if (!g) return;
      var b = shapeBox(g);
      if (!b.width && !b.height) return;
      var p0 = new DOMPoint(b.x, b.y).matrixTransform(M), p1 = new DOMPoint(b.x + b.width, b.y + b.height).matrixTransform(M);
      out = union(out, {x: Math.min(p0.x, p1.x), y: Math.min(p0.y, p1.y), w: Math.abs(p1.x - p0.x), h: Math.abs(p1.y - p0.y)});
    });
    return out;
  }

  function attach(svg, box, opts) {
    opts = opts || {};
    var b0 = svg.viewBox.baseVal;
    var whole = {x: b0.x, y: b0.y, w: b0.width, h: b0.height};
    var vb = Object.assign({}, whole);
    var size = null;           // the box's size (px) vb was set for
    var prefer = null;         // the scale the user chose (zoom, fit, home): following keeps it where it can
    var anim = null;           // {from, to, t0, id}
    svg.setAttribute('width', '100%');
    svg.setAttribute('height', '100%');
    svg.removeAttribute('style');

    function measure() {
      var known = opts.size && opts.size();     // the caller's figures (measured before the drawing went in)
      if (known) return {w: known.w, h: known.h};
      var r = box.getBoundingClientRect();
      return {w: r.width, h: r.height};
    }
    function top() { return opts.top ? opts.top() : 0; }
    function scaleOf(v, s) { s = s || size || measure(); return Math.min(s.w / v.w, s.h / v.h); }
    function apply(v) {
      vb = v;
      svg.setAttribute('viewBox', v.x + ' ' + v.y + ' ' + v.w + ' ' + v.h);
      if (opts.onchange) opts.onchange(api);
    }
    function stop() { if (anim) { cancelAnimationFrame(anim.id); anim = null; } }
    // set the camera box (the box's shape: w/h as the screen's), at once or in a smooth pan
    function set(v, animate) {
      size = measure();
      stop();
      var ms = root.MicrogptCamera.animateMs;
      if (!animate || !size.w || !ms) { apply(v); return; }
      var from = Object.assign({}, vb), t0 = performance.now();
      var tick = function (now) {
        var t = Math.min(1, (now - t0) / ms), e = t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2;
        apply({x: from.x + (v.x - from.x) * e, y: from.y + (v.y - from.y) * e,
               w: from.w + (v.w - from.w) * e, h: from.h + (v.h - from.h) * e});
        anim = t < 1 ? {id: requestAnimationFrame(tick), to: v} : null;
      };
      anim = {id: requestAnimationFrame(tick), to: v};
    }
    // the box at scale s (px per unit) centred on (cx, cy); the screen's top `t` px are covered
    function at(s, cx, cy, t) {
      var w = size.w / s, h = size.h / s;
      return {x: cx - w / 2, y: cy - h / 2 - (t || 0) / 2 / s, w: w, h: h};
    }
    function fitBox(b, maxScale, animate) {
      size = measure();
      var t = top(), pad = 12;
      var s = Math.min((size.w - pad) / b.w, (size.h - pad - t) / b.h, maxScale || Infinity);
      prefer = s;
      set(at(s, b.x + b.w / 2, b.y + b.h / 2, t), animate);
    }
    function zoomAt(factor, cx, cy) {
      var r = svg.getBoundingClientRect();
      if (cx === undefined) { cx = r.left + r.width / 2; cy = r.top + r.height / 2; }
      var ctm = svg.getScreenCTM();
      if (!ctm) return;
      stop();
      var p = new DOMPoint(cx, cy).matrixTransform(ctm.inverse());
      var w = vb.w * factor;
      if (w < 20 || w > Math.max(whole.w, whole.h) * 20) return;
      apply({x: p.x - (p.x - vb.x) * factor, y: p.y - (p.y - vb.y) * factor, w: w, h: vb.h * factor});
      prefer = scaleOf(vb);
    }
    function pan(dx, dy) {
      var ctm = svg.getScreenCTM();
      var k = ctm ? 1 / ctm.a : 1;
      stop();
      apply({x: vb.x - dx * k, y: vb.y - dy * k, w: vb.w, h: vb.h});
    }
    // the box changed size (window, side panel, a bar): keep the scale and the centre
    function reframe() {
      var r = measure();
      if (!r.w) return;
      if (!size || !size.w || !size.h) { size = r; fitBox(whole, 1.6); return; }
      var s = scaleOf(vb, size), cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2;
      size = r;
      stop();
      apply({x: cx - r.w / s / 2, y: cy - r.h / s / 2, w: r.w / s, h: r.h / s});
    }
    // keep `must` in view, and `want` where the scale allows (see the file's comment)
    function follow(must, want, o) {
      o = o || {};
      if (!must) return;
      size = measure();
      if (!size.w || !size.h) return;
      var t = top(), pad = o.pad === undefined ? PAD_PX : o.pad;
      var availW = size.w - 2 * pad, availH = size.h - 2 * pad - t;
      var need = union(must, want);
      var cur = anim ? anim.to : vb;
      var s = prefer || scaleOf(cur);
      s = Math.min(s, availW / need.w, availH / need.h);       // zoom out only as far as needed
      s = Math.max(s, o.minScale || 0);
      if (must.w * s > availW || must.h * s > availH) s = Math.max(Math.min(availW / must.w, availH / must.h), o.minScale || 0);
      var w = size.w / s, h = size.h / s, padU = pad / s, topU = t / s;
      var cx = cur.x + cur.w / 2, cy = cur.y + cur.h / 2;
      // on each axis: the whole of `need` when it fits, else centred on it with `must` kept inside
      function axis(c, half, lo, hi, mlo, mhi, loPad, hiPad) {
        var room = 2 * half - loPad - hiPad;
        if (hi - lo <= room) {
          if (lo < c - half + loPad) c = lo + half - loPad;
          if (hi > c + half - hiPad) c = hi - half + hiPad;
          return c;
        }
        c = (lo + hi) / 2 + (loPad - hiPad) / 2;
        if (mlo < c - half + loPad) c = mlo + half - loPad;
        if (mhi > c + half - hiPad) c = mhi - half + hiPad;
        return c;
      }
      cx = axis(cx, w / 2, need.x, need.x + need.w, must.x, must.x + must.w, padU, padU);
      cy = axis(cy, h / 2, need.y, need.y + need.h, must.y, must.y + must.h, padU + topU, padU);
      var target = {x: cx - w / 2, y: cy - h / 2, w: w, h: h};
      var moved = Math.abs(target.x - cur.x) + Math.abs(target.y - cur.y) + Math.abs(target.w - cur.w);
      if (moved < 0.5) return;
      set(target, o.animate !== false);
    }

    var api = {
      vb: function () { return Object.assign({}, vb); },
      target: function () { return Object.assign({}, anim ? anim.to : vb); },
      moving: function () { return !!anim; },
      whole: function () { return Object.assign({}, whole); },
      size: function () { return size || measure(); },
      scale: function () { return scaleOf(vb); },
      prefer: function (s) { if (s !== undefined) prefer = s; return prefer; },
      set: function (v, animate) { set(v, animate); prefer = scaleOf(v); },
      fitBox: fitBox,
      zoomAt: zoomAt,
      pan: pan,
      reframe: reframe,
      follow: follow,
      stop: stop,
      at: function (s, cx, cy) { size = measure(); return at(s, cx, cy, top()); },
    };
    return api;
  }

  // wheel: zoom at the pointer; drag: pan (a click that ends a drag is flagged: state.dragged)
  function bindPointer(el, camera, o) {
    o = o || {};
    var state = {dragged: false}, drag = null;
    el.addEventListener('wheel', function (e) {
      var cam = camera();
      if (!cam || (o.skipWheel && o.skipWheel(e))) return;     // skipWheel: the wheel is the host's
      e.preventDefault();
      cam.zoomAt(Math.exp(e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), e.clientX, e.clientY);
    }, {passive: false});
    el.addEventListener('pointerdown', function (e) {
      if (e.button !== 0 || (o.skip && o.skip(e))) return;
      drag = {x: e.clientX, y: e.clientY};
      state.dragged = false;
    });
    window.addEventListener('pointermove', function (e) {
      var cam = camera();
      if (!drag || !cam) return;
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!state.dragged && Math.hypot(dx, dy) < 4) return;
      if (!state.dragged) { state.dragged = true; el.classList.add('dragging'); }
      cam.pan(dx, dy);
      drag.x = e.clientX; drag.y = e.clientY;
    });
    window.addEventListener('pointerup', function () { drag = null; el.classList.remove('dragging'); });
    return state;
  }

  // the boxes a frame lights, in viewBox units: {must: the lit node, want: its lit edges, their
  // other ends and the labels on them}; `find(name)` gives a node's drawn <g>
  function frameBoxes(svg, frame, find) {
    if (!frame) return null;
    var must = boxOf(svg, [find(frame.node)]);
    var ends = (frame['with'] || []).map(find);      // forward: the sources lit with it
    frame.edges.forEach(function (e) {
      ends.push(svg.querySelector('[id="' + e.svg + '"]'));
      ends.push(find(e.src === frame.node ? e.dst : e.src));
    });
    var labels = Array.prototype.slice.call(svg.querySelectorAll('text.mg-edge-label'));
    return {must: must, want: boxOf(svg, ends.concat(labels))};
  }

  root.MicrogptCamera = {attach: attach, boxOf: boxOf, shapeBox: shapeBox, union: union, bindPointer: bindPointer, frameBoxes: frameBoxes,
                         animateMs: ANIMATE_MS};    // 0: every move at once (a test measuring each frame)
})(typeof window !== 'undefined' ? window : this);
