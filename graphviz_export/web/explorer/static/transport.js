/* microgpt-graph explorer: where the page's requests and its address go. The one place that knows
 * whether the page has a server.
 *
 * - Served over HTTP (`microgpt-graph explore`): a request is fetch('/api/<endpoint>?<query>') (token.js
 *   adds the server's token), the address is the URL's query (history.pushState, back/forward).
 * - Handed to a host as a srcdoc page (the notebook widget, graphviz_export/web/notebook/widget.js): there
 *   is no server and no URL of its own. A request is a message to the host window, which asks the kernel
 *   (the same Api handlers the server calls) and posts the answer back; the address lives in memory, and
 *   each change is told to the host (the widget's `state`), which may send the page elsewhere.
 *
 * Either way a request answers with a real Response (r.ok, r.status, r.json(), r.blob()), so the page's
 * parts read it one way. Messages to and from the host ({mg: ...}):
 *   page -> host   hello                       the page is ready for its first address
 *                  request {id, endpoint, query}
 *                  state {query}               the address changed (the view drawn, a frame, a selection)
 *   host -> page   start {query, answers}      the first address, and the answers the host already has
 *                                              for it ({endpoint: {query, status, type, headers, body}}:
 *                                              the notebook's kernel gives the first view's with the
 *                                              widget): each answers one request of its endpoint and
 *                                              query, once; any other request is asked
 *                  answer {id, status, type, headers, body}   body: an ArrayBuffer (the HTTP body's bytes)
 *                  go {query}                  show this address (the host's Python side: w.show, w.select)
 *
 *   const T = window.MicrogptTransport;
 *   T.request('view', query, {signal})  -> Promise<Response>
 *   T.exportLink(query)                 -> the URL of /api/export (HTTP), or null (hosted: T.download)
 *   T.download(query)                   -> fetches the export and saves it as a file
 *   T.address.read() / .push(q) / .replace(q) / .start() (Promise of the first query) / .onChange(fn)
 *   T.hosted                            true inside a host (wheel zooms only once the page has focus)
 */
(function () {
  'use strict';
  const hosted = location.protocol === 'about:' && window.parent !== window;
  const changed = [];                // fns run when the address changes from outside (back/forward, the host)

  function http() {
    return {
      request: (endpoint, query, init) => window.fetch(`/api/${endpoint}?${query}`, init),
      exportLink: (query) => '/api/export?' + query,
      address: {
        read: () => location.search.slice(1),
        push: (q) => history.pushState(null, '', '?' + q),
        replace: (q) => history.replaceState(null, '', '?' + q),
        start: () => Promise.resolve(location.search.slice(1)),
      },
    };
  }

  function host() {
    const waiting = new Map();       // request id -> {resolve}
    let seq = 0, here = '', begin = null, given = {};
    const first = new Promise((resolve) => { begin = resolve; });
    const tell = (msg) => window.parent.postMessage(msg, '*');
    // an answer's bytes as the Response a fetch would give
    const answer = (a) => new Response(a.body, {status: a.status, headers: Object.assign({'Content-Type': a.type}, a.headers)});
    window.addEventListener('message', (e) => {
      const m = e.data;
      if (e.source !== window.parent || !m || typeof m.mg !== 'string') return;
      if (m.mg === 'start') { here = m.query || ''; given = m.answers || {}; begin(here); }
      else if (m.mg === 'answer') {
        const w = waiting.get(m.id);
        if (!w) return;              // aborted meanwhile
        waiting.delete(m.id);
        w.resolve(answer(m));
      } else if (m.mg === 'go' && m.query !== here) {
        here = m.query;
        for (const fn of changed) fn();
      }
    });
    function request(endpoint, query, init) {
      const signal = init && init.signal;
      return new Promise((resolve, reject) => {
        const aborted = () => new DOMException('the request was cancelled', 'AbortError');
        if (signal && signal.aborted) { reject(aborted()); return; }
        const had = given[endpoint];
        if (had && had.query === query) { delete given[endpoint]; resolve(answer(had)); return; }
        const id = ++seq;
        waiting.set(id, {resolve});
        if (signal) signal.addEventListener('abort', () => { if (waiting.delete(id)) reject(aborted()); });
        tell({mg: 'request', id, endpoint, query});
      });
    }
    function write(q) { here = q; tell({mg: 'state', query: q}); }
    tell({mg: 'hello'});
    return {
      request,
      exportLink: () => null,
      address: {read: () => here, push: write, replace: write, start: () => first},
    };
  }

  const T = hosted ? host() : http();
  T.hosted = hosted;
  T.address.onChange = (fn) => changed.push(fn);
  if (!hosted) window.addEventListener('popstate', () => { for (const fn of changed) fn(); });
  // the export as a file, where the page cannot follow a link to it (hosted): fetched, then saved
  T.download = async (query) => {
    const r = await T.request('export', query);
    if (!r.ok) throw new Error((await r.json()).error);
    const name = /filename="([^"]+)"/.exec(r.headers.get('Content-Disposition') || '');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await r.blob());
    a.download = name ? name[1] : 'export';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  };
  window.MicrogptTransport = T;
})();
