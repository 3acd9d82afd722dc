/* microgpt-graph explorer: what the server is doing while a view is on its way (/api/progress: the
 * phase of each long job, its percentage and time left, training step k of N) and a Cancel button
 * that stops it (/api/cancel; the view then answers 409 and the page stays where it was). Shown in the busy line the core shows
 * after 120 ms of waiting (explorer.js calls P.progress(true / false)). A part of the page. */
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
    } else if (!on && timer !== null) {
      clearTimeout(timer);
      timer = null;
      $('#busytext').textContent = 'drawing…';
    }
  }
  $('#busycancel').addEventListener('click', () => {
    $('#busytext').textContent = 'cancelling…';
    P.request('cancel', '').catch(() => null);
  });

  P.progress = progress;
  P.jobWords = words;
})(window.explorer.page);
