// Reads the API key from stdin and turns it into the one long-lived Buffer
// that holds it: the `Authorization: Bearer <key>\r\n` line. The key is never
// a JS string; the scratch buffer it was read into is zeroed before return.
import fs from 'node:fs';

// The original accepts 1,017 bytes of [A-Za-z0-9_-]; Bedrock's base64 keys
// and JWT access tokens need more (issue 11): token68 (RFC 9110 §11.2), up
// to 16 KiB, strictly more than the original accepts.
export const MAX_KEY_BYTES = 16_384;
// Which header carries the key (--auth-header): Azure OpenAI's classic
// deployments take `api-key`, everything else `Authorization: Bearer`.
const LINE_STARTS = {
  authorization: Buffer.from('Authorization: Bearer ', 'latin1'),
  'api-key': Buffer.from('api-key: ', 'latin1'),
} as const;
export type AuthHeader = keyof typeof LINE_STARTS;
export const AUTH_HEADERS = Object.keys(LINE_STARTS) as AuthHeader[];
const CRLF = Buffer.from('\r\n', 'latin1');

export class KeyError extends Error {}

// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
// (RFC 9110 §11.2). Like the original's check, this looks at bytes only: a
// `=` in the middle passes, and the upstream judges the value.
export const isToken68Byte = (b: number): boolean =>
  (b >= 0x30 && b <= 0x39) ||
  (b >= 0x41 && b <= 0x5a) ||
  (b >= 0x61 && b <= 0x7a) ||
  b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e || b === 0x2b || b === 0x2f || b === 0x3d;

// Blank: what `printf 'key\n\n'` or a CRLF pair leaves after the first line.
const isBlankByte = (b: number): boolean => b === 0x0a || b === 0x0d || b === 0x20 || b === 0x09;

/**
 * An off-heap Buffer of exactly `size` bytes, zero-filled. A typed array of
 * 64 bytes or less (V8's typed_array_max_size_in_heap) keeps its bytes in
 * the young generation, where every scavenge copies them and leaves the old
 * copy behind (issue 8: 3 copies of a 32-byte key on Node 20). An
 * ArrayBuffer's backing store is always allocated outside the V8 heap and
 * never moves, whatever its length.
 */
export function offHeap(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

/** What the errors call the secret; each is one line and never holds a byte of it. */
export interface TokenWords {
  what: string;
  tooLong: string;
  invalid: string;
  missing: string;
}

const KEY_WORDS: TokenWords = {
  what: 'API key',
  tooLong: `API key too long: at most ${MAX_KEY_BYTES} bytes`,
  invalid: 'API key may only contain ASCII letters, digits and - . _ ~ + / =',
  missing: 'no API key on stdin: pipe it in, e.g. printenv OPENAI_API_KEY | env -u OPENAI_API_KEY codex-responses-api-proxy',
};

/** Issue 11's words for the GitHub request token: "credential too large", "invalid credential". */
export const OIDC_REQUEST_TOKEN_WORDS: TokenWords = {
  what: 'GitHub OIDC request credential',
  tooLong: `GitHub OIDC request credential too large: at most ${MAX_KEY_BYTES} bytes`,
  invalid: 'invalid GitHub OIDC request credential: only ASCII letters, digits and - . _ ~ + / = are allowed',
  missing: 'no GitHub OIDC request credential on stdin: pipe ACTIONS_ID_TOKEN_REQUEST_TOKEN in, e.g. printenv ACTIONS_ID_TOKEN_REQUEST_TOKEN | env -u ACTIONS_ID_TOKEN_REQUEST_TOKEN codex-responses-api-proxy --github-oidc …',
};

/**
 * Reads the first line of `fd` and returns `prefix + value + suffix` in one
 * off-heap Buffer, where value is that line without its LF and one CR before
 * it: 1 to MAX_KEY_BYTES bytes of token68. Returns as soon as the line end
 * (or EOF) has been read, as the original does; it never waits for EOF. What
 * came with the first line is zeroed with the scratch; anything not yet read
 * stays unread in fd. `warn` hears (without any content) when non-blank
 * bytes followed the first line.
 */
export function readTokenLine(fd: number, prefix: Buffer, suffix: Buffer, words: TokenWords, warn: (line: string) => void): Buffer {
  const { what } = words;
  // Room for the longest value, CRLF, and one byte more to detect overflow.
  const scratch = offHeap(MAX_KEY_BYTES + 3);
  try {
    let n = 0;
    let eol = -1;
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
        throw new KeyError(`cannot read the ${what} from stdin (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (got === 0) break;
      eol = scratch.subarray(0, n + got).indexOf(0x0a, n);
      n += got;
      if (eol >= 0) break;
    }
    if (eol < 0 && n === scratch.length) throw new KeyError(words.tooLong);
    const lineEnd = eol < 0 ? n : eol;
    const end = lineEnd > 0 && scratch[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd;
    if (end === 0) throw new KeyError(words.missing);
    if (end > MAX_KEY_BYTES) throw new KeyError(words.tooLong);
    for (let i = 0; i < end; i++) {
      if (!isToken68Byte(scratch[i]!)) throw new KeyError(words.invalid);
    }
    for (let i = lineEnd + 1; i < n; i++) {
      if (!isBlankByte(scratch[i]!)) {
        warn(`warning: stdin held more than one line; only the first is used as the ${what}, the rest is ignored`);
        break;
      }
    }
    const line = offHeap(prefix.length + end + suffix.length);
    prefix.copy(line, 0);
    scratch.copy(line, prefix.length, 0, end);
    suffix.copy(line, prefix.length + end);
    return line;
  } finally {
    scratch.fill(0);
  }
}

/** The key's Authorization (or api-key) line, read from the first line of fd; the caller owns it. */
export function readKeyLine(fd = 0, header: AuthHeader = 'authorization', warn: (line: string) => void = () => {}): Buffer {
  return readTokenLine(fd, LINE_STARTS[header], CRLF, KEY_WORDS, warn);
}
