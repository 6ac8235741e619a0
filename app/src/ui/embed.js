// Portico inside a provider's iframe: reports height and path to the embedding page, and keeps
// a frame whose browser stores no cookie for the portal signed in. See the comment on EMBED_JS.
(() => {
  if (window.parent === window) return;

  // Inside another site's frame Chromium may never give the page an idle period: the bundle's
  // loader (Leptos's island script) waits for one, and the frame then never hydrated, though
  // its JS and wasm had arrived (1 run in 4 of the browser tests). Every idle callback gets a
  // deadline, so the bundle starts at the latest 300 ms after the page is parsed.
  const idle = window.requestIdleCallback;
  if (idle) window.requestIdleCallback = (cb, opts) => idle.call(window, cb, { timeout: 300, ...opts });

  const KEY = 'portico-session';
  const HEADER = 'x-portico-session';
  let pending = null;
  const prefix = `#${KEY}=`;
  if (window.location.hash.startsWith(prefix)) {
    pending = window.location.hash.slice(prefix.length);
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  const storage = () => {
    try {
      return window.sessionStorage; // throws where third-party storage is blocked
    } catch {
      return null;
    }
  };

  let token = null;
  const sameOrigin = (url) => new URL(url, window.location.href).origin === window.location.origin;
  const forget = () => {
    token = null;
    storage()?.removeItem(KEY);
    window.location.replace('/sign-in');
  };

  // Loads `url` with the token and puts its page in place of this one.
  const load = async (url, how) => {
    let res;
    try {
      res = await window.fetch(url, { headers: { accept: 'text/html' } });
    } catch {
      window.location.assign(url);
      return;
    }
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const landed = res.redirected ? res.url : new URL(url, window.location.href).href;
    // Refused (expired or signed out): sign in again.
    if (doc.getElementById('frame-sign-in') || new URL(landed).pathname === '/sign-in') {
      forget();
      return;
    }
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    if (how === 'push') window.history.pushState(null, '', landed);
    else if (how === 'replace') window.history.replaceState(null, '', landed);
    if (how === 'push') window.scrollTo(0, 0);
    hydrate();
    report();
    // The page's live updates (live.js) start, or show their state on the new page.
    window.__porticoLiveStart?.();
  };

  // The bundle hydrates the islands of the page in place when it starts; after that
  // (__porticoReady), a page put in place hydrates its own.
  const hydrate = () => {
    if (!window.__porticoReady || !window.__hydrateIsland) return;
    const islands = [...document.querySelectorAll('leptos-island')].map((el) =>
      window.__hydrateIsland(el, el.dataset.component));
    Promise.all(islands).then(() => document.body.setAttribute('data-hydrated', 'true'));
  };

  const start = () => {
    if (!document.getElementById('frame-sign-in')) return; // a cookie works: nothing to do
    token = pending ?? storage()?.getItem(KEY) ?? null;
    if (!token) {
      forget();
      return;
    }
    if (pending) storage()?.setItem(KEY, pending);
    const fetch = window.fetch.bind(window);
    window.fetch = (input, init) => {
      const req = new Request(input, init);
      if (token && sameOrigin(req.url)) req.headers.set(HEADER, token);
      return fetch(req);
    };
    document.addEventListener('click', (ev) => {
      if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
      const a = ev.target instanceof Element ? ev.target.closest('a[href]') : null;
      if (!a || a.target || a.hasAttribute('download') || a.relList.contains('external')) return;
      if (!sameOrigin(a.href) || /\/(export|embed|sso)\b/.test(new URL(a.href).pathname)) return;
      ev.preventDefault();
      load(a.href, 'push');
    });
    document.addEventListener('submit', (ev) => {
      const form = ev.target;
      if (ev.defaultPrevented || !(form instanceof HTMLFormElement) || form.method !== 'get') return;
      const url = new URL(form.action, window.location.href);
      url.search = new URLSearchParams(new FormData(form)).toString();
      ev.preventDefault();
      load(url.href, 'push');
    });
    window.addEventListener('popstate', () => load(window.location.href, null));
    load(window.location.href, 'replace');
  };

  const ancestors = window.location.ancestorOrigins;
  let target = ancestors && ancestors.length > 0 ? ancestors[0] : '';
  if (!target && document.referrer) target = new URL(document.referrer).origin;
  const tell = target && target !== 'null';

  let height = -1;
  let path = '';
  function report() {
    if (!tell) return;
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
  }
  // Navigation inside the frame goes through the History API; a full load runs this file again.
  for (const method of ['pushState', 'replaceState']) {
    const original = window.history[method];
    window.history[method] = function (...args) {
      const result = original.apply(this, args);
      report();
      return result;
    };
  }
  window.addEventListener('popstate', report);
  if (tell) new ResizeObserver(report).observe(document.documentElement);
  report();

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
