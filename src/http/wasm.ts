// The llhttp parser's compiled bytes, as shipped beside this file by the
// build (scripts/extract-llhttp.mjs takes them from the pinned llhttp-wasm
// 1.0.3 package). Only parse.ts uses this. The bytes are checked against the
// hash recorded here before anything compiles them: code that parses every
// byte a client sends must be exactly the code that was reviewed.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** SHA-256 of the wasm module inside llhttp-wasm@1.0.3's out/index.js (60,347 bytes). */
export const LLHTTP_WASM_SHA256 = '259f8302ac0f7fd7d38469e0d16b505e59c6b432cc5eb856be4d012260de0e11';

export const LLHTTP_WASM_FILE = new URL('./llhttp.wasm', import.meta.url);

/** The pinned bytes; throws an Error with a one-line message when missing or different. */
export function readPinnedWasm(): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(LLHTTP_WASM_FILE);
  } catch (err) {
    throw new Error(`cannot read the HTTP parser ${LLHTTP_WASM_FILE.pathname} (${(err as NodeJS.ErrnoException).code ?? 'error'}); rebuild with npm run build`);
  }
  const sum = createHash('sha256').update(bytes).digest('hex');
  if (sum !== LLHTTP_WASM_SHA256) throw new Error(`the HTTP parser ${LLHTTP_WASM_FILE.pathname} is not the pinned llhttp 1.0.3 build (sha256 ${sum}); refusing to start`);
  return bytes;
}
