/* microgpt-graph: the one escape and the one number format of the pages (the explorer
 * loads this file; a tour inlines it), so every page writes text and numbers as the
 * Python side does:
 *
 *   MicrogptFormat.esc(s)   text safe in HTML and in attribute values: Python's html.escape
 *   MicrogptFormat.fmt(x)   a number as the pictures print it: Python's f'{x:.4g}'
 *                           (graphviz_export/draw/style.fmt): 4 significant digits, ties to
 *                           even, 'nan' / 'inf' / '-inf'; a string (JSON's 'nan') as it is
 *   MicrogptFormat.num(x)   the number a JSON value stands for: JSON has no NaN or infinity, so
 *                           the server writes them 'nan', 'inf', '-inf' (microgpt.files.json_safe);
 *                           null stays null
 *   MicrogptFormat.fixed(x, d)  x.toFixed(d) for a finite number, else 'nan' / 'inf' / '-inf'
 *                           ('?' for null): a loss is shown as what it is
 *
 * Full precision needs no helper: String(x) of a JSON number is its shortest round-trip
 * form, as Python's repr. No dependencies. */
(function (root) {
  'use strict';
  var ENTITIES = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;'};

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return ENTITIES[c]; });
  }

  // |x| to 4 significant digits: [digits (4 characters), decimal exponent]. toExponential
  // rounds an exact tie away from zero; Python rounds it to even: a tie is a double whose
  // exact expansion stops at the 5th digit, a 5 (20 digits show it: doubles are ~17 apart).
  function round4(a) {
    var e = a.toExponential(3), k = e.indexOf('e');
    var digits = e.slice(0, k).replace('.', ''), exp = parseInt(e.slice(k + 1), 10);
    var long = a.toExponential(20), j = long.indexOf('e'), all = long.slice(0, j).replace('.', '');
    if (all[4] === '5' && /^0*$/.test(all.slice(5)) && +all[3] % 2 === 0) {
      digits = all.slice(0, 4);
      exp = parseInt(long.slice(j + 1), 10);
    }
    return [digits, exp];
  }

  function fmt(x) {
    if (typeof x === 'string') return x;
    if (x === null || x === undefined) return '?';
    if (Number.isNaN(x)) return 'nan';
    if (x === Infinity) return 'inf';
    if (x === -Infinity) return '-inf';
    var sign = x < 0 || Object.is(x, -0) ? '-' : '';
    if (x === 0) return sign + '0';
    var r = round4(Math.abs(x)), d = r[0], exp = r[1], out;
    if (exp < -4 || exp >= 4) {
      out = (d[0] + '.' + d.slice(1)).replace(/0+$/, '').replace(/\.$/, '');
      return sign + out + 'e' + (exp < 0 ? '-' : '+') + (Math.abs(exp) < 10 ? '0' : '') + Math.abs(exp);
    }
    if (exp >= 0) out = d.slice(0, exp + 1) + '.' + d.slice(exp + 1);
    else out = '0.' + '0'.repeat(-exp - 1) + d;
    if (out.indexOf('.') >= 0) out = out.replace(/0+$/, '').replace(/\.$/, '');
    return sign + out;
  }

  var WORDS = {nan: NaN, inf: Infinity, '-inf': -Infinity};

  function num(x) {
    if (x === null || x === undefined) return null;
    if (typeof x === 'number') return x;
    return Object.prototype.hasOwnProperty.call(WORDS, x) ? WORDS[x] : Number(x);
  }

  function fixed(x, digits) {
    var n = num(x);
    if (n === null) return '?';
    return isFinite(n) ? n.toFixed(digits) : fmt(n);
  }

  root.MicrogptFormat = {esc: esc, fmt: fmt, num: num, fixed: fixed};
})(typeof window !== 'undefined' ? window : this);
