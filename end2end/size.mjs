// The size budget of the hydrate bundle: prints raw and brotli sizes of the wasm and JS that a
// browser downloads, and fails above the budget.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const BUDGET_BROTLI = 380 * 1000;
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
let raw = 0;
let br = 0;
for (const f of files) {
  const bytes = readFileSync(join(pkg, f));
  const compressed = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
  }).length;
  raw += bytes.length;
  br += compressed;
  console.log(`bundle: ${f.padEnd(16)} raw ${(bytes.length / 1000).toFixed(1).padStart(8)} KB   brotli ${(compressed / 1000).toFixed(1).padStart(7)} KB`);
}
console.log(`bundle: total            raw ${(raw / 1000).toFixed(1).padStart(8)} KB   brotli ${(br / 1000).toFixed(1).padStart(7)} KB   (budget ${BUDGET_BROTLI / 1000} KB brotli)`);
if (br > BUDGET_BROTLI) {
  console.error(`bundle is over budget by ${((br - BUDGET_BROTLI) / 1000).toFixed(1)} KB brotli`);
  process.exit(1);
}
