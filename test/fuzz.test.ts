// fast-check properties over real sockets, against the relay in this process
// and a recording upstream (test/support). Time-boxed: FUZZ_SECONDS (default
// 10) is shared by the properties; `npm run fuzz` runs a long campaign. A
// failure prints fast-check's seed and path: replay it with FUZZ_SEED and
// FUZZ_PATH, then pin the shrunk input in test/regressions/.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { KEY, startUpstream, type Received, type Upstream } from './support/harness.js';
import { expectedUpstream, play, startRelay, type Played, type Relay } from './support/wire.js';

const PROPERTIES = 6;
const BUDGET_MS = (Number(process.env.FUZZ_SECONDS ?? 10) * 1000) / PROPERTIES;

/**
 * Runs a property for its share of the budget and reports how many cases ran.
 * interruptAfterTimeLimit abandons the predicate under way, so each predicate
 * is tracked and awaited: a run must never overlap the next property's.
 */
async function check<Ts extends [unknown, ...unknown[]]>(t: TestContext, arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> }, predicate: (...args: Ts) => Promise<void>): Promise<void> {
  let inflight: Promise<unknown> = Promise.resolve();
  const prop = fc.asyncProperty(...arbs, (...args: Ts) => {
    const p = predicate(...args);
    inflight = p.catch(() => {});
    return p;
  });
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
  const path = process.env.FUZZ_PATH;
  const details = await fc.check(prop, {
    interruptAfterTimeLimit: BUDGET_MS,
    numRuns: 1_000_000,
    ...(seed === undefined ? {} : { seed }),
    ...(path === undefined ? {} : { path }),
  });
  await inflight;
  t.diagnostic(`fuzz: ${t.name}: ${details.numRuns} cases in ${Math.round(BUDGET_MS / 1000)} s (seed ${details.seed})`);
  if (details.failed) throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}\n${String(details.errorInstance)}`);
}

// ── Generators ─────────────────────────────────────────────────────────────
const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const latin1 = (bytes: number[]): string => Buffer.from(bytes).toString('latin1');
const token = fc.array(fc.constantFrom(...TCHAR), { minLength: 1, maxLength: 10 }).map((a) => a.join(''));
/** A field value: VCHAR and obs-text, with SP/HTAB only inside. */
const fieldValue = fc
  .array(fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constantFrom(0x20, 0x09)), { maxLength: 24 })
  .map((a) => latin1(a).replace(/^[ \t]+|[ \t]+$/g, ''));
const caseOf = (name: string): fc.Arbitrary<string> =>
  fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((up) => [...name].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join(''));
/** The client's own credential: none of it may ever reach the upstream. */
const CLIENT_SECRET = 'CLIENT-SECRET-c0ffee';
const otherField = fc.oneof(
  fc.tuple(token.map((t) => `X-${t}`), fieldValue),
  fc.tuple(fc.constantFrom('Content-Type', 'Accept', 'User-Agent', 'OpenAI-Beta', 'session_id', 'originator', 'Connection'), fc.constantFrom('application/json', 'text/event-stream', 'keep-alive', 'codex_cli_rs/0.1', 'responses=experimental', 'caf\xe9')),
  // Node's fetch sends the first; a typed navigation the second: both admitted.
  fc.tuple(caseOf('sec-fetch-mode'), fc.constantFrom('cors', 'navigate', 'no-cors')),
  fc.tuple(caseOf('sec-fetch-site'), fc.constant('none')),
);
/** A Host that names the relay (issue 9), read when a case is generated, once the relay listens. */
const listenerHost = fc.constantFrom('127.0.0.1', 'localhost', '[::1]', 'LocalHost', '127.0.0.1:', 'localhost:', '[::1]:').map((h) => (h.endsWith(':') ? `${h}${relay.port}` : h));
const authField = fc.tuple(caseOf('authorization'), fc.constantFrom(`Bearer ${CLIENT_SECRET}`, `Basic ${CLIENT_SECRET}`, CLIENT_SECRET, ''));
const body = fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 200 }).map(latin1);

interface Chunked {
  chunks: { data: string; ext: string }[];
  lastExt: string;
  trailers: [string, string][];
}
const chunkExt = fc.array(fc.tuple(token, fc.option(fc.oneof(token, fc.stringMatching(/^"[a-z ,;=]{0,8}"$/)), { nil: undefined })), { maxLength: 3 }).map((exts) => exts.map(([n, v]) => `;${n}${v === undefined ? '' : `=${v}`}`).join(''));
const chunkedBody = fc.record({
  chunks: fc.array(fc.record({ data: fc.oneof(body.filter((s) => s.length > 0), fc.constant('x'.repeat(300))), ext: chunkExt }), { maxLength: 6 }),
  lastExt: chunkExt,
  trailers: fc.array(fc.tuple(token.map((t) => `X-T-${t}`), fieldValue), { maxLength: 3 }),
});
const chunkSize = (n: number, pad: number): string => n.toString(16).padStart(pad, '0');
function encodeChunked(c: Chunked, upper: boolean): string {
  const sizes = c.chunks.map((ch) => chunkSize(ch.data.length, 1));
  return (
    c.chunks.map((ch, i) => `${upper ? sizes[i]!.toUpperCase() : sizes[i]}${ch.ext}\r\n${ch.data}\r\n`).join('') +
    `0${c.lastExt}\r\n${c.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`
  );
}

/** A valid request: one Host, any Authorization lines, other fields in any order, CL or chunked framing. */
const validRequest = fc
  .record({
    host: fc.tuple(caseOf('host'), listenerHost),
    auths: fc.array(authField, { maxLength: 3 }),
    others: fc.array(otherField, { maxLength: 8 }),
    framing: fc.oneof(fc.record({ cl: body }), fc.record({ chunked: chunkedBody, upper: fc.boolean() })),
    clName: caseOf('content-length'),
    leadingCrlf: fc.boolean(),
  })
  .chain((r) => {
    const fields: [string, string][] = [r.host, ...r.auths, ...r.others.filter(([n, v]) => !(n === 'Connection' && v !== 'keep-alive'))];
    const f = r.framing as { cl: string } | { chunked: Chunked; upper: boolean };
    const payload = 'chunked' in f ? encodeChunked(f.chunked, f.upper) : f.cl;
    const framing: [string, string] = 'chunked' in f ? ['Transfer-Encoding', 'chunked'] : [r.clName, String(f.cl.length)];
    return fc.shuffledSubarray(fields, { minLength: fields.length, maxLength: fields.length }).map((shuffled) => {
      const lines = [...shuffled, framing].map(([n, v]) => `${n}: ${v}\r\n`).join('');
      return `${r.leadingCrlf ? '\r\n' : ''}POST /v1/responses HTTP/1.1\r\n${lines}\r\n${payload}`;
    });
  });

/** Bytes that break framing and field syntax, inserted anywhere. */
const INJECT = ['\r', '\n', '\r\n', '\x00', ' ', ':', '\t', '\r\n\r\n', '\r\n ', '0\r\n\r\n'];
const mutated = fc
  .tuple(validRequest, fc.array(fc.tuple(fc.nat(), fc.constantFrom(...INJECT)), { minLength: 1, maxLength: 3 }))
  .map(([req, edits]) => {
    let out = req;
    for (const [at, s] of edits) {
      const i = at % (out.length + 1);
      out = out.slice(0, i) + s + out.slice(i);
    }
    return out;
  });
/**
 * A chunked request whose trailer section is near the relay's trailer cap
 * (--max-head-bytes, 64 KiB here): whether it passes (200) or not (431) must
 * not depend on how its reads are cut (issue 10).
 */
const TRAILER_CAP = 65536;
const trailerHeavy = fc.tuple(fc.integer({ min: TRAILER_CAP - 400, max: TRAILER_CAP + 400 }), fc.integer({ min: 20, max: 4000 })).map(([total, line]) => {
  let trailers = '';
  for (let i = 0; trailers.length < total; i++) {
    const name = `X-T${i}: `;
    trailers += `${name}${'v'.repeat(Math.max(1, Math.min(line, total - trailers.length - name.length - 2)))}\r\n`;
  }
  return `POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n${trailers}\r\n`;
});
/**
 * A valid request with what marks a web page's request or a foreign Host
 * added at a random line: every one must be refused (issue 9).
 */
const callerField = fc.oneof(
  fc.tuple(caseOf('origin'), fc.constantFrom('null', 'https://evil.example', 'http://127.0.0.1', '')),
  fc.tuple(caseOf('sec-fetch-site'), fc.constantFrom('cross-site', 'same-site', 'same-origin', 'None', '')),
  fc.tuple(caseOf('host'), fc.constantFrom('attacker.example', 'localhost:1', '127.0.0.2', '', 'api.openai.com:443')),
);
const refusedCaller = fc.tuple(validRequest, callerField, fc.nat()).map(([req, [name, v], at]) => {
  const lines = req.split('\r\n');
  // Field lines run from after the request line (a leading CRLF may come
  // before it) to the empty line; a foreign Host replaces the one there.
  const first = lines.findIndex((l) => l.startsWith('POST ')) + 1;
  const end = lines.indexOf('', first);
  if (name.toLowerCase() === 'host') {
    const i = lines.findIndex((l, k) => k >= first && k < end && /^host:/i.test(l));
    lines[i] = `${name}: ${v}`;
  } else {
    lines.splice(first + (at % (end - first + 1)), 0, `${name}: ${v}`);
  }
  return lines.join('\r\n');
});
const anyRequest = fc.oneof(validRequest, mutated, refusedCaller, fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 120 }).map(latin1));
/** Generated requests are latin1 strings, so counterexamples print readably. */
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Cut points: random, or every byte of the first 400 (the head and the first chunk lines). */
const cuts = fc.oneof({ weight: 4, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }) }, { weight: 1, arbitrary: fc.constant('bytes' as const) });
function cut(buf: Buffer, at: number[] | 'bytes'): Buffer[] {
  if (at === 'bytes') return [...[...buf.subarray(0, 400)].map((x) => Buffer.from([x])), buf.subarray(400)].filter((p) => p.length > 0);
  const points = [...new Set(at.map((n) => n % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    if (p > prev) parts.push(buf.subarray(prev, p));
    prev = p;
  }
  return parts;
}

// ── Strict reference checks (independent of src/) ──────────────────────────
const FIELD_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*(?:[\x21-\x7e\x80-\xff](?:[ \t\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?[ \t]*$/;

/** The upstream request is framed one way only, in strict RFC 9112 syntax. */
function assertUnambiguous(r: Received, hostHeader: string): void {
  const lines = r.head.toString('latin1').split('\r\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.pop(), '');
  assert.equal(lines[0], 'POST /v1/responses HTTP/1.1');
  assert.equal(lines[1], `Host: ${hostHeader}`);
  assert.equal(lines[2], `Authorization: Bearer ${KEY}`);
  let cl: string | undefined;
  let te: string | undefined;
  for (const l of lines.slice(3)) {
    assert.match(l, FIELD_LINE);
    const name = l.slice(0, l.indexOf(':')).toLowerCase();
    const value = l.slice(l.indexOf(':') + 1).trim();
    assert.ok(name !== 'host' && name !== 'authorization' && name !== 'upgrade', `no second ${name}`);
    if (name === 'content-length') (assert.equal(cl, undefined), (cl = value));
    if (name === 'transfer-encoding') (assert.equal(te, undefined), (te = value));
  }
  assert.ok((cl === undefined) !== (te === undefined), 'exactly one of Content-Length and Transfer-Encoding');
  if (cl !== undefined) {
    assert.match(cl, /^\d+$/);
    assert.equal(r.body.length, Number(cl));
    return;
  }
  assert.equal(te, 'chunked');
  // Walk the chunked body with the RFC 9112 §7.1 grammar; it must end exactly at the body's end.
  const text = r.body.toString('latin1');
  const name = `[${TCHAR.replace(/[-\]\\^]/g, '\\$&')}]+`;
  // llhttp accepts an empty value after "=" (RFC 9112 §7.1.1 wants a token or
  // quoted-string); the line still ends at its CRLF, so framing is unaffected.
  const ext = `(?:;${name}(?:=(?:${name}|"(?:[^"\\\\\\r\\n]|\\\\.)*")?)?)*`;
  const chunkLine = new RegExp(`^([0-9A-Fa-f]+)${ext}\\r\\n`);
  let i = 0;
  for (;;) {
    const m = chunkLine.exec(text.slice(i));
    assert.ok(m, `chunk line at ${i}`);
    const size = parseInt(m[1]!, 16);
    i += m[0].length;
    if (size === 0) break;
    assert.equal(text.slice(i + size, i + size + 2), '\r\n');
    i += size + 2;
  }
  for (;;) {
    const end = text.indexOf('\r\n', i);
    assert.ok(end >= 0);
    if (end === i) break;
    assert.match(text.slice(i, end), FIELD_LINE);
    i = end + 2;
  }
  assert.equal(i + 2, text.length, 'the chunked body ends at the last CRLF');
}

// ── Fixtures ───────────────────────────────────────────────────────────────
let up: Upstream;
let relay: Relay;
let hostHeader: string;
before(async () => {
  up = await startUpstream();
  relay = await startRelay(up.url, { headTimeoutMs: 2000 });
  hostHeader = `127.0.0.1:${up.port}`;
});
after(async () => {
  await relay?.close();
  await up?.close();
});

/** A request the relay always refuses at once and closes on: marks the end of a run. */
const SENTINEL = Buffer.from('GET /sentinel HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1');

interface Run {
  played: Played;
  /** Complete requests the upstream framed during the run, and their bytes. */
  received: Received[];
  forwarded: Buffer[];
}

async function run(parts: Buffer[], opts: { end?: boolean; ms?: number } = {}): Promise<Run> {
  const seen = up.received.length;
  const played = await play(relay.port, parts, { ms: opts.ms ?? 3000, ...(opts.end ? { end: true } : {}) });
  const received = up.received.slice(seen);
  return { played, received, forwarded: received.map((r) => Buffer.concat([r.head, r.body])) };
}

describe('fuzz', () => {
  test('split invariance: any request (trailers near their cap among them), any cut into reads, same decision, response and upstream bytes', async (t) => {
    await check(
      t,
      [fc.oneof({ weight: 4, arbitrary: anyRequest }, { weight: 1, arbitrary: trailerHeavy }), cuts],
      async (text, at) => {
        const req = bytes(text);
        const whole = await run([req, SENTINEL]);
        const split = await run([...cut(req, at), SENTINEL]);
        assert.equal(split.played.data.toString('latin1'), whole.played.data.toString('latin1'), 'client bytes');
        assert.equal(split.played.closed, whole.played.closed, 'closed');
        assert.deepEqual(split.forwarded.map((f) => f.toString('latin1')), whole.forwarded.map((f) => f.toString('latin1')), 'upstream bytes');
      },
    );
  });

  test('rewrite invariant: one Host and one Authorization, the proxy\'s; no client credential byte; all else identical, in order', async (t) => {
    await check(
      t,
      [validRequest, cuts],
      async (text, at) => {
        const req = bytes(text);
        const before = up.raw.map((r) => r.length);
        const r = await run([...cut(req, at), SENTINEL]);
        assert.deepEqual(r.played.statuses, [200, 403]);
        assert.equal(r.forwarded.length, 1);
        assert.equal(r.forwarded[0]!.toString('latin1'), expectedUpstream(req, hostHeader).toString('latin1'));
        const head = r.forwarded[0]!.toString('latin1', 0, r.forwarded[0]!.indexOf('\r\n\r\n') + 4);
        assert.equal(head.match(/\r\nhost:/gi)?.length, 1);
        assert.equal(head.match(/\r\nauthorization:/gi)?.length, 1);
        // Every byte the upstream got during the run, on any connection.
        const fresh = up.raw.map((raw, i) => raw.subarray(before[i] ?? 0));
        assert.ok(!fresh.some((raw) => raw.includes(CLIENT_SECRET)), 'no byte of the client credential upstream');
      },
    );
  });

  test('robustness: CR, LF, NUL, SP, colon injected anywhere: answered or closed in bounded time, only unambiguous requests forwarded', async (t) => {
    await check(
      t,
      [mutated, cuts],
      async (text, at) => {
        const req = bytes(text);
        const r = await run(cut(req, at), { end: true, ms: 5000 });
        assert.ok(r.played.closed, 'the connection was answered and closed, or closed, within the bound');
        for (const f of r.received) assertUnambiguous(f, hostHeader);
        // The first forwarded request is exactly the reference rewrite of the bytes the client sent for it.
        const first = r.received[0];
        if (first) {
          let start = 0;
          while (req[start] === 0x0d && req[start + 1] === 0x0a) start += 2;
          const headEnd = req.indexOf('\r\n\r\n', start);
          const clientReq = req.subarray(0, headEnd + 4 + first.body.length);
          assert.equal(Buffer.concat([first.head, first.body]).toString('latin1'), expectedUpstream(clientReq, hostHeader).toString('latin1'));
        }
        assert.deepEqual(relay.logs.filter((l) => l.includes('internal error')), []);
      },
    );
  });

  test('callers: any request with Origin, Sec-Fetch-Site other than none, or a foreign Host is refused from the head, whatever the cut; nothing upstream', async (t) => {
    await check(
      t,
      [refusedCaller, cuts],
      async (text, at) => {
        const before = up.raw.reduce((n, r) => n + r.length, 0);
        const r = await run([...cut(bytes(text), at), SENTINEL]);
        assert.equal(r.played.statuses.length, 1, 'one refusal, then the connection closes');
        assert.ok([403, 421].includes(r.played.statuses[0]!), `status ${r.played.statuses[0]}`);
        assert.equal(r.received.length, 0);
        assert.equal(up.raw.reduce((n, r2) => n + r2.length, 0), before, 'not one byte upstream');
      },
    );
  });

  test('chunked fidelity: random chunk sizes, extensions and trailers reach the upstream byte for byte', async (t) => {
    const req = (c: Chunked, upper: boolean): Buffer => Buffer.from(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${encodeChunked(c, upper)}`, 'latin1');
    await check(
      t,
      [chunkedBody, fc.boolean(), cuts],
      async (c, upper, at) => {
        const sent = req(c, upper);
        const r = await run([...cut(sent, at), SENTINEL]);
        assert.deepEqual(r.played.statuses, [200, 403]);
        assert.equal(r.forwarded.length, 1);
        assert.equal(r.forwarded[0]!.toString('latin1'), expectedUpstream(sent, hostHeader).toString('latin1'));
      },
    );
  });
});

// ── Response framing: a scripted upstream ─────────────────────────────────
const responseSpec = fc.record({
  interim: fc.boolean(),
  status: fc.constantFrom(200, 201, 400, 429, 500),
  reason: fc.constantFrom('OK', 'Whatever Reason', '', 'caf\xe9'),
  fields: fc.array(fc.tuple(token.map((t) => `X-R-${t}`), fieldValue), { maxLength: 4 }),
  framing: fc.oneof(fc.record({ cl: body }), fc.record({ chunked: chunkedBody, upper: fc.boolean() }), fc.constant({ empty: 204 as const })),
});
type ResponseSpec = typeof responseSpec extends fc.Arbitrary<infer T> ? T : never;

function encodeResponse(s: ResponseSpec): Buffer {
  const interim = s.interim ? 'HTTP/1.1 100 Continue\r\n\r\n' : '';
  const fields = s.fields.map(([n, v]) => `${n}: ${v}\r\n`).join('');
  if ('empty' in s.framing) return Buffer.from(`${interim}HTTP/1.1 204 No Content\r\n${fields}\r\n`, 'latin1');
  const [framing, payload] = 'cl' in s.framing ? [`Content-Length: ${s.framing.cl.length}`, s.framing.cl] : ['Transfer-Encoding: chunked', encodeChunked(s.framing.chunked, s.framing.upper)];
  return Buffer.from(`${interim}HTTP/1.1 ${s.status} ${s.reason}\r\n${fields}${framing}\r\n\r\n${payload}`, 'latin1');
}

describe('fuzz: responses', () => {
  let scripted: Upstream;
  let relay2: Relay;
  /** Responses to send, in order, each as parts written one by one. */
  const script: Buffer[][] = [];
  before(async () => {
    scripted = await startUpstream((_req, sock) => {
      const parts = script.shift() ?? [];
      void (async () => {
        for (const p of parts) {
          if (sock.destroyed) return;
          sock.write(p);
          await new Promise((r) => setImmediate(r));
        }
      })();
    });
    relay2 = await startRelay(scripted.url);
  });
  after(async () => {
    await relay2?.close();
    await scripted?.close();
  });

  test('response framing: split upstream responses reach the client exactly; the next request on the connection is unaffected', async (t) => {
    await check(
      t,
      [responseSpec, cuts, responseSpec],
      async (first, at, second) => {
        const r1 = encodeResponse(first);
        const r2 = encodeResponse(second);
        script.length = 0;
        script.push(cut(r1, at), [r2]);
        const req = Buffer.from('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}', 'latin1');
        const data = await twoRequests(relay2.port, req, r1.length, r2.length);
        assert.equal(data.toString('latin1'), Buffer.concat([r1, r2]).toString('latin1'));
      },
    );
  });
});

/** Sends `req`, waits for n1 bytes, sends it again, waits for n2 more; bounded. */
function twoRequests(port: number, req: Buffer, n1: number, n2: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let sentSecond = false;
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(data);
    };
    const timer = setTimeout(done, 5000);
    sock.on('error', () => {});
    sock.on('close', done);
    sock.on('connect', () => sock.write(req));
    sock.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (!sentSecond && data.length >= n1) {
        sentSecond = true;
        sock.write(req);
      }
      if (data.length >= n1 + n2) setImmediate(done);
    });
  });
}
