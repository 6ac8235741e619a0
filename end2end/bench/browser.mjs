// What a browser sees: bytes over the wire per resource type (first and repeat visit), and the
// phone profile (Lighthouse's mobile preset: 4x CPU slowdown, 150 ms RTT, 1.6 Mbps down,
// 750 kbps up, a 360x740 touch screen) with FCP, LCP and the moment the app has hydrated.
// The same Chromium, with the same flags, as the browser tests.
export { launch } from '../tests/helpers.mjs';
import { settled } from '../tests/helpers.mjs';

/// A fresh context (empty cache) that carries the session cookie `name=value`, if given.
async function newContext(browser, base, cookie, options = {}) {
  const context = await browser.newContext({ baseURL: base, ...options });
  if (cookie) {
    const [name, value] = cookie.split(/=(.*)/s);
    await context.addCookies([
      { name, value, domain: '127.0.0.1', path: '/', secure: true, httpOnly: true, sameSite: 'Lax' },
    ]);
  }
  return context;
}

async function hydrated(page, timeout) {
  await page.locator('body[data-hydrated="true"]').waitFor({ state: 'attached', timeout });
}

/// What kind of resource a response is, by its MIME type.
function kind(mime) {
  if (mime.includes('html')) return 'document';
  if (mime.includes('css')) return 'css';
  if (mime.includes('javascript')) return 'js';
  if (mime.includes('wasm')) return 'wasm';
  return 'other';
}

/// Navigates `page` to `path` and waits for hydration and a quiet network; returns, per kind,
/// the requests that went over the network (with their encodings and status) and the bytes
/// they took (`encodedDataLength`: compressed body plus headers), and how many came from cache.
async function visit(page, cdp, path) {
  const seen = new Map();
  const onResponse = (e) =>
    seen.set(e.requestId, {
      kind: kind(e.response.mimeType),
      status: e.response.status,
      encoding: e.response.headers['content-encoding'] ?? e.response.headers['Content-Encoding'] ?? 'identity',
      cached: e.response.fromDiskCache || e.response.fromPrefetchCache || false,
      bytes: 0,
    });
  const onFinished = (e) => {
    const r = seen.get(e.requestId);
    if (r) r.bytes = e.encodedDataLength;
  };
  const onCacheHit = (e) => {
    const r = seen.get(e.requestId);
    if (r) r.cached = true;
  };
  cdp.on('Network.responseReceived', onResponse);
  cdp.on('Network.loadingFinished', onFinished);
  cdp.on('Network.requestServedFromCache', onCacheHit);
  // Not 'networkidle': the page's live event stream stays open.
  const quiet = settled(page);
  await page.goto(path);
  await hydrated(page, 30000);
  await quiet();
  cdp.off('Network.responseReceived', onResponse);
  cdp.off('Network.loadingFinished', onFinished);
  cdp.off('Network.requestServedFromCache', onCacheHit);

  const kinds = {};
  let total = 0;
  for (const r of seen.values()) {
    const k = (kinds[r.kind] ??= { bytes: 0, network: 0, cached: 0, statuses: new Set(), encodings: new Set() });
    // Served from a cache: Chromium reports a memory-cache hit as a response of 0 bytes.
    if (r.cached || r.bytes === 0) {
      k.cached++;
      continue;
    }
    k.network++;
    k.bytes += r.bytes;
    k.statuses.add(r.status);
    k.encodings.add(r.encoding);
    total += r.bytes;
  }
  return { total, kinds, url: page.url() };
}

/// A first visit to `path` in a fresh context, then a repeat visit in the same context.
export async function transfer(browser, base, path, cookie) {
  const context = await newContext(browser, base, cookie);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const first = await visit(page, cdp, path);
  const repeat = await visit(page, cdp, path);
  await context.close();
  if (!first.url.endsWith(path)) throw new Error(`${path} ended at ${first.url}: not signed in?`);
  return { first, repeat };
}

/// Records, from the first script on, the largest contentful paint and when the app hydrated.
function observe() {
  const b = (window.__bench = {});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) b.lcp = e.startTime;
  }).observe({ type: 'largest-contentful-paint', buffered: true });
  new MutationObserver((_, observer) => {
    if (document.body?.dataset.hydrated === 'true') {
      b.hydrated = performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-hydrated'] });
}

export const PHONE = {
  viewport: { width: 360, height: 740 },
  deviceScaleFactor: 1.75,
  isMobile: true,
  hasTouch: true,
  cpuSlowdown: 4,
  network: { offline: false, latency: 150, downloadThroughput: 1_600_000 / 8, uploadThroughput: 750_000 / 8 },
};

/// One load of `path` on the phone profile with an empty cache: FCP, LCP and hydration, in ms
/// from the start of navigation.
export async function phoneRun(browser, base, path, cookie) {
  const { viewport, deviceScaleFactor, isMobile, hasTouch } = PHONE;
  const context = await newContext(browser, base, cookie, { viewport, deviceScaleFactor, isMobile, hasTouch });
  const page = await context.newPage();
  await page.addInitScript(observe);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: PHONE.cpuSlowdown });
  await cdp.send('Network.emulateNetworkConditions', PHONE.network);
  await page.goto(path, { timeout: 120000 });
  await page.waitForFunction(() => window.__bench.hydrated !== undefined, null, { timeout: 120000 });
  // LCP candidates stop after the first input; none comes here, so let late paints land.
  await page.waitForTimeout(500);
  const r = await page.evaluate(() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
    lcp: window.__bench.lcp,
    hydrated: window.__bench.hydrated,
    url: location.pathname,
  }));
  await context.close();
  if (r.url !== path) throw new Error(`${path} ended at ${r.url}: not signed in?`);
  return r;
}
