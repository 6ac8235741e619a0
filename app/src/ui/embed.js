// Inside a provider's iframe, tell the embedding page the portal's content height (so it can
// size the frame) and its current path (so it can mirror navigation), as
// { type: 'portico:resize', height } and { type: 'portico:navigate', path }.
//
// Messages go to the embedding page's origin only, never '*'. That origin already passed the
// portal's Content-Security-Policy frame-ancestors, which lists exactly the configured sites,
// or the browser would not have shown the portal at all. The portal listens to no messages.
(() => {
  if (window.parent === window) return;
  const ancestors = window.location.ancestorOrigins;
  let target = ancestors && ancestors.length > 0 ? ancestors[0] : '';
  if (!target && document.referrer) target = new URL(document.referrer).origin;
  if (!target || target === 'null') return;

  let height = -1;
  let path = '';
  const report = () => {
    const h = document.documentElement.scrollHeight;
    if (h !== height) {
      height = h;
      window.parent.postMessage({ type: 'portico:resize', height: h }, target);
    }
    const p = window.location.pathname + window.location.search;
    if (p !== path) {
      path = p;
      window.parent.postMessage({ type: 'portico:navigate', path: p }, target);
    }
  };
  // Client-side navigation goes through the History API; a full load runs this file again.
  for (const method of ['pushState', 'replaceState']) {
    const original = window.history[method];
    window.history[method] = function (...args) {
      const result = original.apply(this, args);
      report();
      return result;
    };
  }
  window.addEventListener('popstate', report);
  new ResizeObserver(report).observe(document.documentElement);
  report();
})();
