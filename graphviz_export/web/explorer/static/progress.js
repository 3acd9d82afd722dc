/* microgpt-graph explorer: what the server is doing while a view is on its way (/api/progress: the
 * phase of each long job, its percentage and time left, training step k of N) and a Cancel button
 * that stops it (/api/cancel; the view then answers 409 and the page stays where it was). Shown in the busy line the core shows
 * after 120 ms of waiting (explorer.js calls P.progress(true / false)); and the work a step does after its
 * first view, no view waiting for it (#storeline): its store into the user cache, a big step's walk of its
 * routes from the loss (the why panel's). A part of the page. */
(function (P) {
  'use strict';
  const $ = P.$;
  let timer = null;

  // what a job says: its phase, percentage and time left as the terminal prints them (the server's
  // `line`, recording.phases), and training step k of N
  function words(job) {
    const step = job.phase === 'training' ? ` · ${job.step} / ${job.steps}` : '';
    return `${job.what}: ${job.line}${step}`;
  }
  async function poll() {
    try {
      const r = await P.request('progress', '');
      const body = await r.json();
      if (r.ok && timer !== null) $('#busytext').textContent = body.work.length ? body.work.map(words).join(' · ') : 'drawing…';
    } catch (e) { /* the next poll says it */ }
    if (timer !== null) timer = setTimeout(poll, 400);
  }
  function progress(on) {
    if (on && timer === null) {
      timer = setTimeout(poll, 0);
      $('#storeline').hidden = true;        // the busy line lists every job, the store too
    } else if (!on && timer !== null) {
      clearTimeout(timer);
      timer = null;
      $('#busytext').textContent = 'drawing…';
    }
    if (!on && stores === null) stores = setTimeout(storing, 0);
  }
  // a step recorded now is stored in the user cache once its first view is drawn, in the background
  // (Recordings.drawn: its use records, then the file; seconds at 5 M nodes), and a big step walks its
  // routes from the loss: their line under the bars while they run, asked after each view drawn and every
  // STORE_POLL ms until they end; no Cancel (no view waits for them)
  let stores = null;
  const STORE_POLL = 1000;
  const AFTER_VIEW = ['store', 'routes', 'extremes', 'adam'];     // recordings.py STORE, AFTER_VIEW's kinds
  async function storing() {
    let jobs = [];
    try {
      const r = await P.request('progress', '');
      const body = await r.json();
      if (r.ok) jobs = body.work.filter((job) => AFTER_VIEW.includes(job.kind));
    } catch (e) { /* the next view asks again */ }
    $('#storeline').textContent = jobs.map(words).join(' · ');
    $('#storeline').hidden = !jobs.length || timer !== null;
    stores = jobs.length ? setTimeout(storing, STORE_POLL) : null;
  }
  $('#busycancel').addEventListener('click', () => {
    $('#busytext').textContent = 'cancelling…';
    P.request('cancel', '').catch(() => null);
  });

  P.progress = progress;
  P.jobWords = words;
})(window.explorer.page);
