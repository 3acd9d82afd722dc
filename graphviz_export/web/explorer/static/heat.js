/* microgpt-graph explorer: a matrix's heat-map, painted in the page. A part of the page (explorer.js).
 *
 * The server draws each heat-map row as a plain box (graphviz_export/draw/heatmap.py `cells`: the
 * size, id and place of a striped row, so the layout and the edges leaving a row are the same) and
 * sends each matrix's cells once: view.heat = {matrix node: {rows, cols, palette, d, g}}, `d` and `g`
 * one byte a cell (its palette index: style.heat_index), row after row, in base64. Striped, a 4 x 64
 * model's matrix was 33,000 polygons and their tooltips: 5.7 MB of its 6.2 MB answer.
 *
 * Each row's cells are painted inside its box, one <path> per colour and the column lines as
 * Graphviz strokes its stripes, under the box's outline: the classes the step-through puts on a row
 * (stepper.css: a grad column hidden until its frame, grey while pending) still cover it, as they
 * covered the stripes. A row's tooltip (every value of it, in the server's one format) is asked from
 * /api/heatrow when the pointer first comes onto the row (heatrows.py).
 *
 *   MicrogptHeat.paint(svg, view.heat)      every row of every heat-map
 *   MicrogptHeat.paintRow(g, fills)         one row (its <g class="node">), a colour per column;
 *                                           stepper.js repaints a row so (the update phase's Δvalue)
 */
(function (P) {
  'use strict';
  const NS = 'http://www.w3.org/2000/svg', XLINK = 'http://www.w3.org/1999/xlink';
  const ROW = /^m\d+_[dg]\d+$/;
  const r2 = (x) => Math.round(x * 100) / 100;      // Graphviz's precision in its SVG

  function path(d, fill) {
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d);
    p.setAttribute('fill', fill);
    return p;
  }

  // the row <g> painted with `fills` (a colour per column, left to right) inside its box
  function paintRow(g, fills) {
    const box = g.querySelector('polygon');
    const old = g.querySelector('g.mg-heat');
    if (old) old.remove();
    if (!box || !fills.length) return;
    const pts = box.getAttribute('points').trim().split(/\s+/).map((p) => p.split(',').map(Number));
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const x0 = Math.min(...xs), w = (Math.max(...xs) - x0) / fills.length;
    const y0 = Math.min(...ys), y1 = Math.max(...ys);
    const runs = new Map();         // colour -> its cells, one rectangle per run of equal neighbours
    for (let k = 0; k < fills.length;) {
      let j = k + 1;
      while (j < fills.length && fills[j] === fills[k]) j++;
      runs.set(fills[k], (runs.get(fills[k]) || '') + `M${r2(x0 + k * w)} ${y0}H${r2(x0 + j * w)}V${y1}H${r2(x0 + k * w)}Z`);
      k = j;
    }
    let lines = '';
    for (let k = 1; k < fills.length; k++) lines += `M${r2(x0 + k * w)} ${y0}V${y1}`;
    const layer = document.createElementNS(NS, 'g');
    layer.setAttribute('class', 'mg-heat');
    layer.dataset.fills = fills.join(' ');
    for (const [fill, d] of runs) layer.append(path(d, fill));
    const grid = path(lines, 'none');
    grid.setAttribute('stroke', box.getAttribute('stroke') || '#999999');
    grid.setAttribute('stroke-width', box.getAttribute('stroke-width') || '0.3');
    layer.append(grid);
    box.parentNode.insertBefore(layer, box);
  }

  function paint(svg, heat) {
    if (!svg || !heat) return;
    const rows = new Map();
    for (const g of svg.querySelectorAll('g.node')) rows.set(g.id, g);
    for (const [m, h] of Object.entries(heat)) {
      for (const part of ['d', 'g']) {
        const bin = atob(h[part]);
        const colours = new Array(h.cols);
        for (let r = 0; r < h.rows; r++) {
          const g = rows.get(`node-${m}_${part}${r}`);
          if (!g) continue;
          for (let k = 0; k < h.cols; k++) colours[k] = h.palette[bin.charCodeAt(r * h.cols + k)];
          paintRow(g, colours);
        }
      }
    }
  }

  // a row's tooltip: its lines from the server the first time the pointer comes onto it
  async function tip(e) {
    const g = e.target.closest && e.target.closest('g.node');
    const view = P.view;
    if (!g || !view || !view.heat) return;
    const name = P.nodeName(g), a = g.querySelector('a');
    if (!name || !ROW.test(name) || !a || a.dataset.lines) return;
    a.dataset.lines = 'asked';
    try {
      const r = await P.request('heatrow', `${view.url ? view.url + '&' : ''}row=${name}`);
      const body = await r.json();
      if (!r.ok) throw new Error(body.error);
      a.setAttributeNS(XLINK, 'xlink:title', body.lines.join('\n'));
      a.dataset.lines = 'shown';
    } catch (err) {
      delete a.dataset.lines;           // asked again on the next visit
    }
  }
  P.$('#graph').addEventListener('pointerover', tip);

  window.MicrogptHeat = {paint, paintRow};
  P.paintHeat = paint;
})(window.explorer.page);
