// The size budget of the islands bundle: prints raw and brotli sizes of the wasm and JS that a
// browser downloads, and fails when what every visitor downloads first exceeds the budget.
// Chunks split off for lazy islands (the build step's wasm-split: split_*.wasm and the chunk_*.wasm
// they share) are fetched only when a page with such an island opens; they are listed and
// totalled apart.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

// Issue 14's budget for the first visit over the wire, page and stylesheet included; the files
// alone must fit in it too. Never to be raised.
const BUDGET_BROTLI = 170 * 1000;
const pkg = process.argv[2];
if (!pkg) {
  console.error('usage: node size.mjs <site pkg dir>');
  process.exit(2);
}
const files = readdirSync(pkg).filter((f) => f.endsWith('.wasm') || f.endsWith('.js'));
if (!files.some((f) => f.endsWith('.wasm'))) {
  console.error(`no .wasm in ${pkg}: build the site first`);
  process.exit(2);
}
const lazy = (f) => /^(split_|chunk_).*\.wasm$/.test(f);
const kb = (n) => (n / 1000).toFixed(1);
const totals = { initial: [0, 0], lazy: [0, 0] };
for (const f of files.sort()) {
  const bytes = readFileSync(join(pkg, f));
  const compressed = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
  }).length;
  const t = totals[lazy(f) ? 'lazy' : 'initial'];
  t[0] += bytes.length;
  t[1] += compressed;
  const name = f.length > 40 ? `${f.slice(0, 37)}...` : f;
  console.log(`bundle: ${name.padEnd(40)} raw ${kb(bytes.length).padStart(8)} KB   brotli ${kb(compressed).padStart(7)} KB${lazy(f) ? '   (lazy)' : ''}`);
}
const [raw, br] = totals.initial;
console.log(`bundle: lazy chunks, total                  raw ${kb(totals.lazy[0]).padStart(8)} KB   brotli ${kb(totals.lazy[1]).padStart(7)} KB`);
console.log(`bundle: first download, total               raw ${kb(raw).padStart(8)} KB   brotli ${kb(br).padStart(7)} KB   (budget ${BUDGET_BROTLI / 1000} KB brotli)`);
if (br > BUDGET_BROTLI) {
  console.error(`the first download is over budget by ${kb(br - BUDGET_BROTLI)} KB brotli`);
  process.exit(1);
}
