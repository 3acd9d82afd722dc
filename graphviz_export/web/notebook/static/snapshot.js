/* microgpt-graph: a saved notebook's explorer, without a kernel (graphviz_export/web/notebook/snapshot.py).
 * Its output holds the view's picture (shown as is where scripts do not run: GitHub) and the view's
 * backprop step-through as a tour page without its picture (the tour's player: web/tour/build.py),
 * deflated and in base64. Where scripts run (exported HTML, nbviewer, a notebook front end without the
 * widget), this script inflates the page locally (no request), puts the picture in, and plays it in a
 * frame of its own, in place of the picture. */
(function (box) {
  'use strict';
  const packed = box && box.querySelector('script[type="application/x-microgpt-tour"]');
  if (!packed || !window.DecompressionStream) return;      // an old browser: the picture stays
  const bytes = Uint8Array.from(atob(packed.textContent.trim()), (c) => c.charCodeAt(0));
  const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  new Response(inflated).text().then((text) => {
    const [before, after] = JSON.parse(text);           // the tour page around its picture: the still's
    const frame = document.createElement('iframe');
    frame.title = 'step through backprop on this view (a saved copy)';
    frame.setAttribute('sandbox', 'allow-scripts');
    frame.style.cssText = 'width: 100%; height: ' + box.dataset.height + 'px; border: 1px solid #ddd; border-radius: 4px;';
    frame.srcdoc = before + box.querySelector('.mg-still svg').outerHTML + after;
    box.querySelector('.mg-still').hidden = true;          // the stepper shows the same picture
    box.append(frame);
  });
})(document.currentScript && document.currentScript.parentElement);
