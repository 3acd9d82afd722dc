/* microgpt-graph explorer: search and suggestions. As you type, suggestions (debounced); Enter, the
 * match rows; arrows move through the list, Enter takes the marked row, a click too; the list stays
 * until Esc or a click elsewhere. Each row's view is the server's (/api/search's url per row).
 * A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$, esc = P.esc;
  let list = null;                   // {kind: 'sug'|'match', items, cur}
  let sugTimer = null, sugSeq = 0;

  // a search request asks in the state on screen (the server keeps what it keeps of it)
  const ask = (q) => P.query(Object.assign({}, P.state, {q}));
  function hideResults() { $('#results').hidden = true; list = null; clearTimeout(sugTimer); sugSeq++; }
  function showList(kind, items, head) {
    const box = $('#results');
    list = {kind, items, cur: -1};
    box.innerHTML = (head ? `<div class="head">${head}</div>` : '') + items.map((m, k) => kind === 'sug' ?
      `<div class="row sug" data-i="${k}"><span class="txt">${esc(m.text)}</span><span class="hint">${esc(m.hint)}</span>` +
      `<span class="n" title="nodes it matches">${m.count === null || m.count === undefined ? '' : m.count}</span></div>` :
      `<div class="row match" data-i="${k}" title="${esc(m.hl)}"><span class="path">${esc(m.path)}</span>` +
      `<span class="lbl">${esc(m.label)}</span><span class="n">${m.count}</span></div>`).join('');
    box.hidden = !items.length && !head;
    // inside the window: a box near its right edge opens its list leftwards (the page never shifts)
    box.style.left = '';
    const r = box.getBoundingClientRect();
    if (!box.hidden && r.right > window.innerWidth - 8) box.style.left = `${window.innerWidth - 8 - r.right}px`;
  }
  function markRow(k) {
    if (!list || !list.items.length) return;
    list.cur = (k + list.items.length) % list.items.length;
    for (const r of document.querySelectorAll('#results .row')) r.classList.toggle('cur', Number(r.dataset.i) === list.cur);
    const r = $(`#results .row[data-i="${list.cur}"]`);
    if (r) r.scrollIntoView({block: 'nearest'});
  }
  function takeRow(k) {
    const m = list.items[k];
    if (list.kind === 'sug') {
      $('#q').value = m.text;
      $('#q').focus();
      if (m.done) runSearch(m.text); else suggestNow();
      return;
    }
    markRow(k);
    for (const r of document.querySelectorAll('#results .row')) r.classList.toggle('went', Number(r.dataset.i) === k);
    P.navigate(m.url, {});
    $('#q').focus();
  }
  async function suggestNow() {
    const mine = ++sugSeq;
    const q = $('#q').value;
    try {
      const r = await P.request('suggest', ask(q));
      const d = await r.json();
      if (mine !== sugSeq) return;             // typed on, or searched meanwhile
      if (!r.ok) throw new Error(d.error);
      showList('sug', d.suggestions, '');
    } catch (err) {
      if (mine === sugSeq) showList('sug', [], `<span class="err">${esc(err.message)}</span>`);
    }
  }
  async function runSearch(q) {
    clearTimeout(sugTimer);
    const mine = ++sugSeq;
    try {
      const r = await P.request('search', ask(q));
      const d = await r.json();
      if (mine !== sugSeq) return;
      if (!r.ok) throw new Error(d.error);
      const more = d.scopes > d.matches.length ? ` (the first ${d.matches.length} listed)` : '';
      const s = (n, w) => `${n} ${w}${n === 1 ? '' : w.endsWith('h') ? 'es' : 's'}`;
      const what = d.unit === 'cell' ? `${s(d.count, 'cell')} of ${esc(d.matches[0].path)}: the matrix, then each cell` :
        d.unit === 'view' ? `${s(d.count, 'match')}, shown by ${s(d.scopes, 'view')}: its own, then wider` :
        `${s(d.count, 'match')} in ${s(d.scopes, d.unit)}`;
      showList('match', d.matches, `${what}${more} · <span class="hint">↑↓ Enter or click: show one · Esc: close</span>`);
      P.navigate(d.url, {});
    } catch (err) {
      if (mine === sugSeq) showList('match', [], `<span class="err">${esc(err.message)}</span>`);
    }
  }
  $('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = $('#q').value.trim();
    if (!q) { hideResults(); return; }
    if (list && list.cur >= 0) { takeRow(list.cur); return; }
    runSearch(q);
  });
  $('#q').addEventListener('input', () => {
    clearTimeout(sugTimer);
    sugSeq++;
    if (!$('#q').value) { hideResults(); return; }       // emptied (the field's ×, or Esc): nothing to suggest
    if (list) {                                           // a new query: Enter searches it, not the old list's row
      list.cur = -1;
      for (const r of document.querySelectorAll('#results .row.cur')) r.classList.remove('cur');
    }
    sugTimer = setTimeout(suggestNow, 150);
  });
  $('#q').addEventListener('focus', () => { if ($('#results').hidden && !$('#q').value) suggestNow(); });
  $('#q').addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      e.stopPropagation();
      if (!list || $('#results').hidden) { suggestNow(); return; }
      markRow(list.cur < 0 ? (e.key === 'ArrowDown' ? 0 : -1) : list.cur + (e.key === 'ArrowDown' ? 1 : -1));
    } else if (e.key === 'Escape' && !$('#results').hidden) {
      e.stopPropagation();
      e.preventDefault();              // a search field clears itself on Esc: keep the query, close the list
      hideResults();
    }
  });
  $('#results').addEventListener('click', (e) => {
    const r = e.target.closest('.row[data-i]');
    if (r && list) takeRow(Number(r.dataset.i));
  });
  document.addEventListener('click', (e) => {
    if (!e.target.closest('#search') && !$('#results').hidden) hideResults();
  });

  Object.assign(P, {hideResults});
})(window.explorer.page);
