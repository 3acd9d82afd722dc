/* microgpt-graph explorer: a matrix's heat-map, painted in the page. A part of the page (explorer.js).
 *
 * The server draws each heat-map row as a plain box (graphviz_export/draw/heatmap.py `cells`: the
 * size, id and place of a striped row, so the layout and the edges leaving a row are the same) and
 * sends each matrix's cells once: view.heat = {matrix node: {rows, cols, palette, d, g}}, `d` and `g`
 * one byte a cell (its palette index: style.heat_index), row after row, in base64. Striped, a 4 x 64
 * model's matrix was 33,000 polygons and their tooltips: 5.7 MB of its 6.2 MB answer.
 *
 * Each side of a matrix (data, grad) is painted as one layer under its rows' boxes: a <path> per
 * colour, a rectangle per cell in the boxes' places, outlined as Graphviz outlines a stripe. A few
 * elements, not 33,000: the page's layout and style of a matrix view cost what its boxes cost. A
 * row's box lies over its cells (transparent), so the classes the step-through puts on a row
 * (stepper.css: a grad column hidden until its frame) still cover them, as they covered the
 * stripes. A row's tooltip (every value of it, in the server's one format) is asked from
 * /api/heatrow when the pointer first comes onto the row (heatrows.py); its boxes carry none (an <a>
 * around each of 512 boxes was a quarter of the page's time for a 4 x 64 model's matrix).
 *
 *   MicrogptHeat.paint(svg, view.heat)         every side of every heat-map
 *   MicrogptHeat.paintRows(svg, {id: fills})   rows painted with other colours (a colour per column;
 *                                              the update phase's Δvalue: stepper.js)
 *   MicrogptHeat.restore(svg)                  the colours of paint() again
 *   MicrogptHeat.painted(svg)                  whether paint() painted this SVG
 */
(function (P) {
  'use strict';
  const NS = 'http://www.w3.org/2000/svg';
  const ROW = /^node-(m\d+)_([dg])(\d+)$/;
  const sides = new WeakMap();      // svg -> {'m0_d': side}; side = {boxes, fills, shown, layer}
  const r2 = (x) => Math.round(x * 100) / 100;      // Graphviz's precision in its SVG

  // a row's box: its Graphviz polygon's (viewbox.js shapeBox), in the SVG's units
  const boxOf = (g) => (g ? window.MicrogptCamera.shapeBox(g) : null);

  // the side's layer drawn again from side.shown (a colour list per row)
  function draw(side) {
    const cells = new Map();        // colour -> its cells' rectangles (strings, joined once)
    let at = null, cols = 0, xs = [];
    side.boxes.forEach((b, r) => {
      const fills = side.shown[r];
      if (!b || !fills) return;
      if (at !== `${b.x},${b.width},${fills.length}`) {      // the rows of a side share their x: computed once
        at = `${b.x},${b.width},${fills.length}`;
        cols = fills.length;
        const w = b.width / cols;
        xs = [...Array(cols).keys()].map((k) => {
          const a = r2(b.x + k * w), cw = r2(r2(b.x + (k + 1) * w) - a);
          return [`M${a} `, `h${cw}v`, `h${-cw}z`];
        });
      }
      const h = r2(b.height);
      for (let k = 0; k < cols; k++) {
        let list = cells.get(fills[k]);
        if (!list) cells.set(fills[k], list = []);
        list.push(xs[k][0] + b.y + xs[k][1] + h + xs[k][2]);
      }
    });
    const layer = document.createElementNS(NS, 'g');
    layer.setAttribute('class', 'mg-heat');
    for (const [fill, d] of cells) {
      const p = document.createElementNS(NS, 'path');
      p.setAttribute('d', d.join(''));
      p.setAttribute('fill', fill);
      p.setAttribute('stroke', side.stroke[0]);
      p.setAttribute('stroke-width', side.stroke[1]);
      layer.append(p);
    }
    if (side.layer) side.layer.replaceWith(layer); else side.under.parentNode.insertBefore(layer, side.under);
    side.layer = layer;
  }

  function paint(svg, heat) {
    if (!svg || !heat) return;
    const rows = new Map();
    for (const g of svg.querySelectorAll('g.node')) rows.set(g.id, g);
    const mine = {};
    for (const [m, h] of Object.entries(heat)) {
      for (const part of ['d', 'g']) {
        const bin = atob(h[part]);
        const gs = [...Array(h.rows).keys()].map((r) => rows.get(`node-${m}_${part}${r}`));
        const first = gs.find(Boolean);
        if (!first) continue;
        const poly = first.querySelector('polygon');
        const side = {boxes: gs.map(boxOf), under: first, layer: null, fills: [],
                      stroke: [poly.getAttribute('stroke') || '#999999', poly.getAttribute('stroke-width') || '0.3']};
        for (let r = 0; r < h.rows; r++) {
          const row = new Array(h.cols);
          for (let k = 0; k < h.cols; k++) row[k] = h.palette[bin.charCodeAt(r * h.cols + k)];
          side.fills.push(row);
          if (gs[r]) gs[r].dataset.mini = row[0];     // the minimap's colour of the row (a striped row's first)
        }
        side.shown = side.fills.slice();
        draw(side);
        mine[`${m}_${part}`] = side;
      }
    }
    sides.set(svg, mine);
  }

  function paintRows(svg, rows) {
    const mine = sides.get(svg) || {};
    const changed = new Set();
    for (const [id, fills] of Object.entries(rows)) {
      const m = ROW.exec(id), side = m && mine[`${m[1]}_${m[2]}`];
      if (!side) continue;
      side.shown[+m[3]] = fills;
      changed.add(side);
    }
    changed.forEach(draw);
  }

  function restore(svg) {
    for (const side of Object.values(sides.get(svg) || {})) {
      if (side.shown.some((f, r) => f !== side.fills[r])) { side.shown = side.fills.slice(); draw(side); }
    }
  }

  // a row's tooltip: a <title> in its box (the box has none: no <a> around each of 512 boxes), its first
  // line (the server's, view.heat's titles) at once, then its lines from the server, asked once
  async function tip(e) {
    const g = e.target.closest && e.target.closest('g.node');
    const view = P.view, m = g && ROW.exec(g.id);
    const heat = m && view && view.heat && view.heat[m[1]];
    const box = heat && g.querySelector('polygon');
    if (!box || box.querySelector('title')) return;
    const t = document.createElementNS(NS, 'title');
    t.textContent = heat.titles[m[2]].replace('{row}', m[3]);
    box.append(t);
    try {
      const r = await P.request('heatrow', `${view.url ? view.url + '&' : ''}row=${P.nodeName(g)}`);
      const body = await r.json();
      if (!r.ok) throw new Error(body.error);
      t.textContent = body.lines.join('\n');
      t.dataset.lines = 'shown';
    } catch (err) {
      t.remove();                       // asked again on the next visit
    }
  }
  P.$('#graph').addEventListener('pointerover', tip);

  window.MicrogptHeat = {paint, paintRows, restore, painted: (svg) => sides.has(svg)};
  P.paintHeat = paint;
})(window.explorer.page);
