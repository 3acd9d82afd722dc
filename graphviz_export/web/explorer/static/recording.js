/* microgpt-graph explorer: another document recorded in the background. The recording form asks
 * /api/record (the server starts the recording and answers at once: jobs.py), then polls it and
 * draws the job's phase, percentage and time left (its `line`: the very text the terminal prints,
 * recording.phases) in a bar under the top bar, with a Cancel button. Meanwhile the page is the page:
 * the document on screen answers its views, panels, search and expansions. Once recorded, the new
 * document opens (the server's recording link of the view on screen then, with the typed fields).
 * Asked for another document while one records, the server says no in one line (409: what runs,
 * how far); the page shows it and goes on with the one recording.
 * The same bar while the server opens a saved trace (explore --trace: it serves at once and loads in
 * the background; a view asked meanwhile answers 503 with the job): the page asks again every POLL
 * until the first view draws, with no Cancel (nothing to show without it); a load that failed leaves
 * its one line on the page (the server stops). A part of the page (explorer.js). */
(function (P) {
  'use strict';
  const $ = P.$;
  const POLL = 300;                  // ms between two polls of a running recording
  let asked = null;                  // {query, fields} of the recording being polled, or null
  let timer = null;

  function show(job) {
    $('#recbar').hidden = false;
    $('#rectext').textContent = P.jobWords(job);
    const fill = $('#recfill');
    fill.parentNode.classList.toggle('unknown', job.percent === null);
    fill.style.width = `${job.percent === null ? 100 : job.percent}%`;
    $('#recbar').dataset.percent = job.percent === null ? '' : String(job.percent);
  }
  function done() {
    asked = null;
    clearTimeout(timer);
    timer = null;
    $('#recbar').hidden = true;
  }
  // one question to the server about `mine`: its answer drawn, the next poll set
  async function ask(mine) {
    let r, body;
    try {
      r = await P.request('record', mine.query);
      body = await r.json();
    } catch (e) {                    // a lost answer: the next poll asks again
      if (mine === asked) timer = setTimeout(() => ask(mine), POLL);
      return;
    }
    if (mine !== asked) return;
    if (!r.ok) { done(); P.showMsg(body.error); return; }
    if (body.ready) {
      done();
      P.typed(P.view.links.recording.url, mine.fields);      // the view on screen now says where
      return;
    }
    show(body.job);
    timer = setTimeout(() => ask(mine), POLL);
  }
  // the recording form: the fields typed (the server's link names them); refused while one records
  async function record(fields) {
    if (!P.view) return;             // the server still opening its first step: its bar says how far
    const query = P.typedQuery(P.view.links.recording.url, fields);
    if (asked) {                     // one at a time: the server names what runs (409), nothing starts
      const r = await P.request('record', query);
      const body = await r.json();
      if (body.ready) { P.typed(P.view.links.recording.url, fields); return; }
      if (!r.ok) P.showMsg(body.error);
      return;
    }
    const mine = asked = {query, fields};
    await ask(mine);
  }
  // the server opening its trace: `refused` the view's 503 ({error, opening: the job}); `again()` asks
  // for the view again, which draws it (the bar goes) or comes back here, further on
  async function opening(refused, again) {
    if (refused.opening.failed) {
      $('#recbar').hidden = true;
      P.showNote(refused.error);
      return;
    }
    show(refused.opening);
    $('#reccancel').hidden = true;
    await new Promise((r) => setTimeout(r, POLL));
    await again();
    if (!asked) $('#recbar').hidden = true;
    $('#reccancel').hidden = false;
  }
  $('#reccancel').addEventListener('click', () => {
    $('#rectext').textContent = 'cancelling…';
    P.request('cancel', '').catch(() => null);       // the next poll says it was cancelled
  });

  P.record = record;
  P.opening = opening;
})(window.explorer.page);
