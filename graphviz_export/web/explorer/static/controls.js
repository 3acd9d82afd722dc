/* microgpt-graph explorer: the bars. Tabs, the document's chips, the view's controls, the recording
 * switch and the export menu. Where each leads is the view's `links` (the server's links.py): a tab,
 * a chip or a choice is a URL; typed text (a node, a budget, a parameter, a document) goes into the
 * field its link names, and the server validates it. A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$, esc = P.esc, F = window.MicrogptFormat;
  const precise = (x) => { const n = F.num(x); return n === null ? '?' : isFinite(n) ? n.toPrecision(6) : F.fmt(n); };

  // once per recording (/api/info): the line of chips, the recording's fields, what it can export
  function drawPositions() {
    const info = P.info;
    const p = $('#positions');
    const sc = info.script;
    $('#comparebtn').hidden = info.fixed;
    if (sc) {
      p.innerHTML = `<span class="lbl">your script <b>${esc(sc.file)}</b> · class ${esc(sc.class)} (${esc(sc.convention)} ` +
        `convention) · backward() call ${esc(sc.step)} · ${esc(info.n_nodes)} nodes · loss ${precise(info.loss)}` +
        ` · ${sc.functions.length} functions, ${sc.lines.length} lines${info.tokens.length ? ' · positions:' : ''}</span>`;
    } else {
      // the document's name is in the crumbs and the doc field: here its loss, then its positions
      p.innerHTML = `<span class="lbl" title="the document '${esc(info.doc)}'${info.truncated ? ' (truncated)' : ''}: ` +
        `its loss and its positions">loss ${F.fixed(info.loss, 4)}` +
        `${info.truncated ? ' (truncated)' : ''} ·</span>`;
    }
    // where NaN or infinity starts (the first in forward order, the first grad in backward order):
    // one click away, its neighbourhood with it selected (the server's link)
    for (const k of ['data', 'grad']) {
      const b = info.nonfinite && info.nonfinite[k];
      if (!b) continue;
      const a = document.createElement('span');
      a.className = 'chip nonfinite';
      a.dataset.k = k;
      a.textContent = `⚠ first ${k === 'data' ? 'NaN/inf' : 'NaN/inf grad'}: ${b.name} = ${F.fmt(b.value)}`;
      a.title = k === 'data' ? 'the first node, in the order the forward pass made them, whose value is NaN or ' +
        'infinite: where it starts (click: its neighbourhood)' : 'the first node backward reached whose grad ' +
        'is NaN or infinite (click: its neighbourhood)';
      a.addEventListener('click', () => P.navigate(b.to));
      p.append(a);
    }
    if (info.tokens.length) {
      const all = document.createElement('span');
      all.className = 'chip all';
      all.textContent = 'whole document';
      all.title = 'every position, block level';
      all.addEventListener('click', () => P.navigate(P.view.links.chips.doc));
      p.append(all);
    }
    for (const t of info.tokens) {
      const c = document.createElement('span');
      c.className = 'chip';
      c.dataset.pos = t.pos;
      c.innerHTML = `${esc(t.pos)}: ${esc(t.char)}→${esc(t.target)}<small>${t.loss !== undefined ? F.fixed(t.loss, 2) : ''}</small>`;
      c.title = `position ${t.pos}: reads '${t.char}', should predict '${t.target}'; loss ${t.loss}`;
      c.addEventListener('click', () => P.navigate(P.view.links.chips.positions[t.pos]));
      p.append(c);
    }
    $('#doc').value = info.doc || '';
    $('#seed').value = info.seed === null ? '' : info.seed;
    $('#ckpt').value = info.ckpt || '';
    for (const el of ['#doc', '#seed', '#ckpt', '#recording button']) $(el).disabled = info.fixed;
    for (const a of document.querySelectorAll('#exportmenu a')) {
      a.classList.toggle('disabled', a.dataset.fmt === 'png' && !info.png);
      if (a.dataset.fmt === 'png' && !info.png) a.title = 'needs Graphviz dot installed';
    }
  }

  const opt = (v, t, sel) => `<option value="${esc(v)}"${String(sel) === String(v) ? ' selected' : ''}>${esc(t)}</option>`;
  // one control of links.controls: a choice (<select>), a check box or typed text
  function control(c, k) {
    const at = `data-i="${k}" data-f="${esc(c.field)}"`;
    const title = c.title ? ` title="${esc(c.title)}"` : '';
    if (c.kind === 'choice') {
      return `<label${title}>${esc(c.label)} <select ${at}>${c.options.map(([v, t]) => opt(v, t, c.value)).join('')}</select></label>`;
    }
    if (c.kind === 'check') return `<label${title}><input type="checkbox" ${at}${c.value ? ' checked' : ''}> ${esc(c.label)}</label>`;
    return `<label${title}>${esc(c.label)} <input ${at} size="${c.size}" value="${esc(c.value)}"` +
      `${c.placeholder ? ` placeholder="${esc(c.placeholder)}"` : ''} spellcheck="false"></label>`;
  }
  // the tabs, the chip and the controls of the view on screen (the server's links and values)
  function syncControls() {
    if (!P.info || !P.view) return;
    const links = P.view.links;
    for (const b of document.querySelectorAll('#tabs button')) {
      b.hidden = !(b.dataset.view in links.tabs);
      b.classList.toggle('on', b.dataset.view === P.view.state.view);
    }
    const on = links.chips ? links.chips.on : null;
    for (const c of document.querySelectorAll('#positions .chip[data-pos]')) c.classList.toggle('on', Number(c.dataset.pos) === on);
    const whole = $('#positions .chip.all');
    if (whole) whole.classList.toggle('on', on === 'doc');
    const cur = $('#positions .chip.on');          // the line is narrow: the chip of this view in sight
    if (cur) cur.scrollIntoView({block: 'nearest', inline: 'nearest'});
    $('#viewctl').innerHTML = links.controls.map(control).join('');
  }
  $('#viewctl').addEventListener('change', (e) => {
    const el = e.target;
    const c = P.view.links.controls[Number(el.dataset.i)];
    if (!c) return;
    if (c.kind === 'choice') P.navigate(c.options.find((o) => o[0] === el.value)[2]);
    else if (c.kind === 'check') P.navigate(el.checked ? c.on : c.off);
    else P.typed(c.url, {[c.field]: el.value.trim()});
  });
  $('#tabs').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    const to = b && P.view && P.view.links.tabs[b.dataset.view];
    if (to !== undefined) P.navigate(to);
  });

  // -- another recording: the document, seed and checkpoint typed, into the server's link -----------
  // (recorded in the background while the page goes on: recording.js)
  $('#recording').addEventListener('submit', (e) => {
    e.preventDefault();
    const r = P.view.links.recording;
    P.record(Object.fromEntries(r.fields.map((f) => [f, $('#' + f).value.trim()])));
  });

  // -- export, help --------------------------------------------------------------------------------
  $('#exportbtn').addEventListener('click', (e) => { e.stopPropagation(); $('#exportmenu').hidden = !$('#exportmenu').hidden; });
  $('#exportmenu').addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (!a) return;
    const q = [P.view.links.export, 'fmt=' + a.dataset.fmt].filter(Boolean).join('&');
    const link = window.MicrogptTransport.exportLink(q);
    if (link) a.href = link;         // a server: the browser follows the link and saves the file
    else {                           // a notebook's kernel: fetched through the widget, then saved
      e.preventDefault();
      window.MicrogptTransport.download(q).catch((err) => P.showMsg(err.message));
    }
    setTimeout(() => { $('#exportmenu').hidden = true; }, 0);
  });
  document.addEventListener('click', (e) => {
    if (!e.target.closest('.dropdown')) { $('#exportmenu').hidden = true; $('#comparemenu').hidden = true; }
  });
  $('#helpbtn').addEventListener('click', () => { $('#help').hidden = !$('#help').hidden; });
  $('#help').addEventListener('click', () => { $('#help').hidden = true; });

  Object.assign(P, {drawPositions, syncControls});
})(window.explorer.page);
