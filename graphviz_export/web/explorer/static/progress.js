/* microgpt-graph explorer: what the server is doing while a view is on its way (/api/progress: the
 * phase of each long job, training step k of N) and a Cancel button that stops it (/api/cancel; the
 * view then answers 409 and the page stays where it was). Shown in the busy line the core shows
 * after 120 ms of waiting (explorer.js calls P.progress(true / false)). A part of the page. */
(function (P) {
  'use strict';
  const $ = P.$;
  let timer = null;

  function words(job) {
    const step = job.steps ? ` ${job.step} / ${job.steps}` : '';
    return `${job.what}: ${job.phase}${step} (${Math.round(job.seconds)} s)`;
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
})(window.explorer.page);
