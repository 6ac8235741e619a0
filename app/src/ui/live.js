// Portico's live updates: one event stream per tab, announced to the page. See the comment on
// LIVE_JS.
(() => {
  const KINDS = ['instance.created', 'instance.changed', 'instance.deleted', 'operation.changed', 'audit.appended'];
  let lastId = null;
  let lastUpdate = null;
  let running = false;
  // Whether this connection said hello.
  let heard = false;
  let stop = null;

  const status = () => document.getElementById('live-state');
  const clock = (t) => t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const say = (live) => {
    window.__porticoLive = live;
    const el = status();
    if (!el) return;
    el.dataset.state = live ? 'live' : 'reconnecting';
    el.textContent = live ? 'Live' : `Reconnecting… last update ${clock(lastUpdate ?? new Date())}`;
  };

  // Regions of a plain page (no island) that change with an event kind are marked
  // data-live="kind …" and have an id: they are fetched again and put in place.
  let refreshing = null;
  const refresh = (kind) => {
    const marked = [...document.querySelectorAll('[data-live]')].filter((el) =>
      el.id && el.dataset.live.split(' ').includes(kind));
    if (marked.length === 0 || refreshing) return;
    refreshing = setTimeout(async () => {
      refreshing = null;
      try {
        const res = await window.fetch(window.location.href, { headers: { accept: 'text/html' } });
        if (!res.ok) return;
        const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
        for (const el of marked) {
          const fresh = doc.getElementById(el.id);
          if (!fresh || !el.isConnected) continue;
          el.replaceWith(document.adoptNode(fresh));
          // The islands that came with it hydrate, once the bundle has started.
          if (window.__porticoReady && window.__hydrateIsland) {
            for (const island of fresh.querySelectorAll('leptos-island')) {
              window.__hydrateIsland(island, island.dataset.component);
            }
          }
        }
      } catch {
        // Unreachable for now: the next event or the reconnect tries again.
      }
    }, 150);
  };

  // The islands showing an instance reload it on `portico:instance:<id>`, once per burst: an
  // operation's end is several events, and one reload shows them all.
  const bursts = new Map();
  const changed = (id) => {
    if (bursts.has(id)) return;
    bursts.set(id, setTimeout(() => {
      bursts.delete(id);
      window.dispatchEvent(new Event(`portico:instance:${id}`));
    }, 100));
  };

  const dispatch = (frame) => {
    let id = null;
    let kind = 'message';
    let data = '';
    for (const line of frame.split('\n')) {
      // A comment: the keep-alive.
      if (line.startsWith(':')) continue;
      const at = line.indexOf(':');
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') kind = value;
      else if (field === 'data') data += value;
    }
    if (id !== null) lastId = id;
    if (kind === 'hello') {
      heard = true;
      say(true);
    } else if (kind === 'snapshot') {
      // Away longer than the server keeps events: the page as it is now.
      window.location.reload();
    } else if (KINDS.includes(kind)) {
      lastUpdate = new Date();
      let instance = null;
      try {
        instance = JSON.parse(data).instance_id;
      } catch {
        // Ids only; an unreadable one names nothing.
      }
      // An audit line alone (a refused request) changes nothing an instance shows.
      if (instance && kind !== 'audit.appended') changed(instance);
      refresh(kind);
    }
  };

  // The stream is read with fetch, not EventSource: fetch carries the session header where a
  // frame keeps no cookie (embed.js adds it), so no token ever goes into an address.
  const connect = async () => {
    const controller = new AbortController();
    stop = () => controller.abort();
    const headers = { accept: 'text/event-stream' };
    if (lastId !== null) headers['last-event-id'] = lastId;
    const res = await window.fetch('/events', { headers, signal: controller.signal, cache: 'no-store' });
    if (res.status === 401) return 'signed-out';
    if (!res.ok || !res.body) return 'failed';
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'ended';
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  };

  const run = async () => {
    if (running) return;
    running = true;
    let wait = 1000;
    for (;;) {
      let how;
      try {
        how = await connect();
      } catch {
        how = 'failed';
      }
      if (!running || how === 'signed-out') break;
      say(false);
      // Quickly after a stream that worked; then less and less often, up to every 10 s.
      if (heard) wait = 1000;
      heard = false;
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 10000);
    }
    running = false;
  };

  const start = () => {
    // Signed-out pages have no status line.
    if (!status() || !window.fetch || !window.TextDecoderStream) return;
    lastUpdate = lastUpdate ?? new Date();
    if (running) say(window.__porticoLive === true);
    run();
  };
  window.__porticoLiveStart = start;
  window.addEventListener('pagehide', () => {
    running = false;
    stop?.();
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted) start();
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
