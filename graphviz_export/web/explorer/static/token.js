/* The explorer's token (graphviz_export/web/explorer/access.py): its API answers only requests that
 * carry it. `explore` prints the page's URL with the token in the fragment (#token=...), which no
 * request sends and no other page can read. Loaded before the page's own scripts, this file
 *  - keeps that fragment on every URL the page writes into history, so a reload, back/forward or a
 *    copied link work for as long as the same server runs;
 *  - sends the token with the page's fetches of /api/ (the X-Explorer-Token header);
 *  - adds it to the /api/ links the page follows itself (exports), where no header can ride, as api_token.
 * A page opened without it gets the server's one-line refusal, which says where the URL is. */
(() => {
  'use strict';
  const found = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (!found) return;
  const token = found[1];
  const ours = (u) => {
    const url = new URL(u, location.href);
    return url.origin === location.origin && url.pathname.startsWith('/api/');
  };
  for (const name of ['pushState', 'replaceState']) {
    const write = history[name].bind(history);
    history[name] = (data, title, url) => {
      if (url !== undefined && url !== null) {
        const u = new URL(url, location.href);
        if (!u.hash) u.hash = 'token=' + token;
        url = u.href;
      }
      return write(data, title, url);
    };
  }
  const send = window.fetch.bind(window);
  window.fetch = (input, init) => {
    if (!ours(input instanceof Request ? input.url : String(input))) return send(input, init);
    const headers = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
    headers.set('X-Explorer-Token', token);
    return send(input, Object.assign({}, init, {headers}));
  };
  // bubbling to window: after the page's own handlers have set the link's href
  window.addEventListener('click', (e) => {
    const a = e.target instanceof Element ? e.target.closest('a[href]') : null;
    if (!a || !ours(a.href)) return;
    const u = new URL(a.href);
    u.searchParams.set('api_token', token);   // not `token`: that is a view's position
    a.href = u.href;
  });
})();
