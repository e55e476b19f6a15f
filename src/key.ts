// Reads the API key from stdin and turns it into the one long-lived Buffer
// that holds it: the `Authorization: Bearer <key>\r\n` line (or, for Azure's
// classic deployments, `api-key: <key>\r\n`). The key is never
// a JS string; the scratch buffer it was read into is zeroed before return.
import fs from 'node:fs';

// The original reads into a 1024-byte buffer that already holds "Bearer ".
export const MAX_KEY_BYTES = 1017;
const LINE_STARTS = {
  authorization: Buffer.from('Authorization: Bearer ', 'latin1'),
  'api-key': Buffer.from('api-key: ', 'latin1'),
} as const;
export type AuthHeader = keyof typeof LINE_STARTS;
export const AUTH_HEADERS = Object.keys(LINE_STARTS) as AuthHeader[];

export class KeyError extends Error {}

let authLine: Buffer | null = null;

// [A-Za-z0-9_-], as the original accepts.
const isKeyByte = (b: number): boolean =>
  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f;

/** Reads fd until EOF or until more than a key and its line end could need. */
export function readKeyLine(fd = 0, header: AuthHeader = 'authorization'): Buffer {
  const LINE_START = LINE_STARTS[header];
  // Room for the longest key, CRLF, and one byte more to detect overflow.
  const scratch = Buffer.allocUnsafeSlow(MAX_KEY_BYTES + 3).fill(0);
  try {
    let n = 0;
    for (let spins = 0; n < scratch.length; ) {
      let got: number;
      try {
        got = fs.readSync(fd, scratch, n, scratch.length - n, null);
      } catch (err) {
        // A non-blocking stdin (inherited from some launchers) has no data yet.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN' && spins++ < 3000) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
          continue;
        }
        if ((err as NodeJS.ErrnoException).code === 'EOF') break;
        throw new KeyError(`cannot read the API key from stdin (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (got === 0) break;
      n += got;
    }
    let end = scratch.indexOf(0x0a);
    const lineEnd = end < 0 ? n : end;
    if (end < 0 && n === scratch.length) throw new KeyError(`API key too long: at most ${MAX_KEY_BYTES} bytes`);
    if (end >= 0 && end + 1 < n) throw new KeyError('stdin must hold exactly one line: the API key');
    end = lineEnd > 0 && scratch[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd;
    if (end === 0) throw new KeyError('no API key on stdin: pipe it in, e.g. printenv OPENAI_API_KEY | codex-responses-api-proxy');
    if (end > MAX_KEY_BYTES) throw new KeyError(`API key too long: at most ${MAX_KEY_BYTES} bytes`);
    for (let i = 0; i < end; i++) {
      if (!isKeyByte(scratch[i]!)) throw new KeyError("API key may only contain ASCII letters, digits, '-' and '_'");
    }
    // V8 keeps a typed array of at most 64 bytes inside its own heap, where a
    // GC moves it and leaves the old copy behind (an `api-key: ` line with a
    // 32-character Azure key is 43 bytes): 65 bytes or more stay off-heap.
    const size = LINE_START.length + end + 2;
    const line = Buffer.allocUnsafeSlow(Math.max(size, 65)).subarray(0, size);
    LINE_START.copy(line, 0);
    scratch.copy(line, LINE_START.length, 0, end);
    line[line.length - 2] = 0x0d;
    line[line.length - 1] = 0x0a;
    authLine = line;
    return line;
  } finally {
    scratch.fill(0);
  }
}

/** Zeroes the key's only copy; called on every exit path. */
export function wipeKey(): void {
  authLine?.fill(0);
}
