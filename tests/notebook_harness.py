"""The notebook widget's front end in a browser with no Jupyter: this harness plays the kernel.

It loads the widget's own ES module (its `_esm`: static/widget.js) and CSS into a page, as anywidget does
(a Blob URL, imported), and calls its render({model, el, experimental}) with
- a model holding the widget's synced traits (_page, state, height); save_changes() sends the
  page's `state` back to the Python widget (as the comm would), fromKernel() plays a trait the
  kernel changed (push());
- experimental.invoke(name, msg): the widget's anywidget command `name` called on the Python
  widget, its answer's bytes handed back as a DataView (as JupyterLab hands comm buffers).
No HTTP server: every request of the page is answered by the widget's `_request`, i.e. Api.answer.
"""

import base64
import json
import time

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>a notebook</title><style>__CSS__</style></head>
<body style="margin: 8px; width: __WIDTH__px"><p>a notebook: <input id="outside" placeholder="another cell"></p>
<div id="cell"></div>
<script type="module">
const traits = __TRAITS__;
const listeners = {};
const model = {
  get: (k) => traits[k],
  set: (k, v) => { traits[k] = v; },
  save_changes: () => window.kernel_sync(traits.state),
  on: (ev, fn) => { (listeners[ev] = listeners[ev] || []).push(fn); },
  off: (ev, fn) => { listeners[ev] = (listeners[ev] || []).filter((f) => f !== fn); },
  send: () => {},
};
window.harness = {
  requests: [],
  fromKernel(k, v) { traits[k] = v; for (const fn of listeners['change:' + k] || []) fn(); },
};
const experimental = {
  async invoke(name, msg, opts) {
    window.harness.requests.push(msg.endpoint);
    const [meta, b64] = await window.kernel_command(name, msg);
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return [meta, [new DataView(bytes.buffer)]];
  },
};
const url = URL.createObjectURL(new Blob([__ESM__], {type: 'text/javascript'}));
const mod = await import(url);
window.harness.t0 = performance.timeOrigin + performance.now();      // the cell's output arrives: render
window.harness.cleanup = mod.default.render({model, el: document.getElementById('cell'), experimental});
</script></body></html>"""


def harness_page(widget, width=1000):
    """The harness page's HTML for a Python explorer widget (explorer_widget's)."""
    traits = {'_page': widget._page, 'state': widget.state, 'height': widget.height, '_first': widget._first}
    js = lambda v: json.dumps(v).replace('</', '<\\/')      # noqa: E731 -- inside <script>: no '</' ends it
    return (PAGE.replace('__CSS__', widget._css).replace('__WIDTH__', str(width))
            .replace('__TRAITS__', js(traits)).replace('__ESM__', js(widget._esm)))


def open_widget(page, widget, width=1000, displayed=False, meanwhile=None):
    """Show `widget` in `page` (a Playwright page), its kernel side played here; returns the explorer's
    frame (the page inside the cell), once it has drawn its first view. The widget is displayed first
    (its _repr_mimebundle_, as the notebook does: that gives it the first view's answers), unless
    `displayed` says the caller did. `meanwhile()` is called once the page is set, while it draws (the
    kernel's work once the cell is done: widget.after_cell)."""
    if not displayed:
        widget._repr_mimebundle_()
    commands = type(widget)._anywidget_commands

    def kernel_command(name, msg):
        response, buffers = commands[name](widget, msg, [])
        return [response, base64.b64encode(buffers[0]).decode('ascii')]

    def kernel_sync(state):
        widget.state = state

    page.expose_function('kernel_command', kernel_command)
    page.expose_function('kernel_sync', kernel_sync)
    page.set_content(harness_page(widget, width))
    if meanwhile is not None:
        meanwhile()
    frame = page.wait_for_selector('#cell iframe').content_frame()
    frame.wait_for_selector('#graph svg g.node')
    frame.wait_for_function('window.explorer && window.explorer.view')
    return frame


def synced(page, widget, predicate, timeout=5.0):
    """Wait until the page's state, sent back as the comm would, makes predicate(widget) true."""
    end = time.monotonic() + timeout
    while not predicate(widget):
        if time.monotonic() > end:
            raise AssertionError(f"the widget's state {widget.state!r} did not arrive in {timeout} s")
        page.wait_for_timeout(20)      # lets Playwright run the page's calls into Python
    return True


def push(page, widget):
    """The kernel changed the widget's state (w.show, w.select): tell the front end, as the comm would."""
    page.evaluate('q => harness.fromKernel("state", q)', widget.state)
