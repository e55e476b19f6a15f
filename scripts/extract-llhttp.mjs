// Build step (npm run build, after tsc): takes the llhttp wasm module out of
// the pinned llhttp-wasm package, where it is one base64 string in
// out/index.js, checks it against the hash that src/http/wasm.ts records,
// and writes it beside the compiled parser as dist/src/http/llhttp.wasm. The
// runtime never loads the package's JS wrapper (see src/http/parser.ts).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { LLHTTP_WASM_FILE, LLHTTP_WASM_SHA256 } from '../dist/src/http/wasm.js';

const require = createRequire(import.meta.url);
const pkgDir = require.resolve('llhttp-wasm/package.json').replace(/package\.json$/, '');
const fail = (msg) => {
  process.stderr.write(`extract-llhttp: ${msg}\n`);
  process.exit(1);
};

const { version } = JSON.parse(readFileSync(`${pkgDir}package.json`, 'utf8'));
if (version !== '1.0.3') fail(`llhttp-wasm ${version} is installed; the pinned version is 1.0.3`);
const src = readFileSync(`${pkgDir}out/index.js`, 'utf8');
const found = [...src.matchAll(/\bbinaryString = "([A-Za-z0-9+/=]+)"/g)];
if (found.length !== 1) fail(`expected one base64 wasm string in ${pkgDir}out/index.js, found ${found.length}`);
const bytes = Buffer.from(found[0][1], 'base64');
const sum = createHash('sha256').update(bytes).digest('hex');
if (sum !== LLHTTP_WASM_SHA256) fail(`the wasm in llhttp-wasm 1.0.3 has sha256 ${sum}, not the recorded ${LLHTTP_WASM_SHA256}`);
writeFileSync(LLHTTP_WASM_FILE, bytes, { mode: 0o644 });
