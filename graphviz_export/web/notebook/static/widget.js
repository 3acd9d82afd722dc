/* microgpt-graph explorer in a notebook cell (anywidget's front end: render({model, el, experimental})).
 *
 * The cell shows the explorer's own page (the `_page` trait: static/index.html with its scripts and
 * styles inline, graphviz_export/web/explorer/assets.py) in a srcdoc iframe, so the page keeps its own
 * document: its styles, ids and keys stay inside the cell (a key reaches the explorer only while it has
 * focus), and two explorers in one notebook do not meet. The page has no server: its transport
 * (static/transport.js) posts each request here, and this module asks the kernel through anywidget's
 * command channel (the widget's `_request`: the explorer's Api.answer, the handlers the HTTP server
 * calls); the answer's bytes go back to the page as the body of a Response.
 *
 * The first view needs no request: its answers (the view, its recording's info) come with the widget,
 * computed by the kernel when it displayed it (the `_first` trait), and go to the page with its first
 * address; the page uses each once, for that very query (transport.js).
 *
 * The page's address (its view state, as the server's URL query) is the model's `state`: every change
 * the page makes is saved there (w.state, w.selected in Python), and a `state` set in Python (w.show,
 * w.select) is sent to the page to show.
 */
const WAIT = 600000;          // ms a request may wait for the kernel (it may be running a long cell)
const SLOW = 4000;            // ms after which the cell says it is waiting for the kernel

function render({model, el, experimental}) {
  const box = document.createElement('div');
  box.className = 'microgpt-explorer';
  // at most 80% of the window: on a 1024x768 projector 700 px would not fit beside JupyterLab's bars
  const fit = () => { box.style.height = `min(${model.get('height')}px, 80vh)`; };
  fit();
  const frame = document.createElement('iframe');
  frame.title = 'microgpt-graph explorer';
  frame.setAttribute('sandbox', 'allow-scripts allow-downloads allow-popups');
  frame.setAttribute('allow', 'fullscreen');
  const note = document.createElement('div');
  note.className = 'microgpt-explorer-note';
  note.hidden = true;
  box.append(frame, note);

  let shown = null;           // the address the page reported last
  let pending = 0, slow = null;
  const post = (msg, transfer) => frame.contentWindow && frame.contentWindow.postMessage(msg, '*', transfer || []);
  function waiting(delta) {
    pending += delta;
    clearTimeout(slow);
    note.hidden = true;
    if (pending > 0) {
      slow = setTimeout(() => {
        note.textContent = 'waiting for the kernel… (busy running a cell? a saved notebook without a kernel: run the cell again)';
        note.hidden = false;
      }, SLOW);
    }
  }
  async function ask(m) {
    waiting(+1);
    let out;
    try {
      const [meta, buffers] = await experimental.invoke('_request', {endpoint: m.endpoint, query: m.query},
        {signal: AbortSignal.timeout(WAIT)});
      const b = buffers[0];            // a DataView (JupyterLab) or an ArrayBuffer: the answer's bytes
      const body = b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
      out = [{mg: 'answer', id: m.id, status: meta.status, type: meta.type, headers: meta.headers, body}, [body]];
    } catch (err) {
      const error = `the kernel did not answer (${err && err.name === 'TimeoutError' ? `${WAIT / 1000} s` : err}); ` +
        'is it running? Run the cell again';
      out = [{mg: 'answer', id: m.id, status: 504, type: 'application/json', headers: {}, body: JSON.stringify({error})}];
    } finally {
      waiting(-1);
    }
    post(...out);
  }
  function onMessage(e) {
    const m = e.data;
    if (e.source !== frame.contentWindow || !m || typeof m.mg !== 'string') return;
    // the first address, with the answers the kernel gave at display for it (the `_first` trait)
    if (m.mg === 'hello') post({mg: 'start', query: model.get('state'), answers: model.get('_first') || {}});
    else if (m.mg === 'request') ask(m);
    else if (m.mg === 'state') {
      shown = m.query;
      if (model.get('state') !== m.query) { model.set('state', m.query); model.save_changes(); }
    }
  }
  function onState() {
    const q = model.get('state');
    if (q !== shown) post({mg: 'go', query: q});
  }
  window.addEventListener('message', onMessage);
  model.on('change:state', onState);
  model.on('change:height', fit);
  frame.srcdoc = model.get('_page');
  el.append(box);
  return () => {
    window.removeEventListener('message', onMessage);
    model.off('change:state', onState);
    model.off('change:height', fit);
    clearTimeout(slow);
  };
}

export default {render};
