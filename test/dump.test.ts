// --dump-dir over real sockets: file names and numbering, when each file is
// written, the JSON shape, the redaction list, encoded bodies, client abort,
// upstream failure, an unwritable directory, the file mode and the cap.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { splitRequestHead } from '../src/http/head.js';
import { Dump, DUMP_BUDGET, DUMP_CAP } from '../src/dump/tap.js';
import { KEY, rawExchange, responsesComplete, runCli, startProxy, startUpstream, tmpDir, waitFor, type Proxy, type Responder, type Upstream } from './support/harness.js';

const NAME = /^(\d{6})-(\d{13})-(request|response)\.json$/;
const CAP = 4 * 1024 * 1024;
assert.equal(DUMP_CAP, CAP);

/** A real-world-sized project key (164 chars), never to be seen in a dump. */
const PROJECT_KEY = `sk-proj-${'Ab3_-xYz9Q'.repeat(15)}abcdef`;

function post(port: number, body: string | Buffer, extra = ''): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([
    Buffer.from(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n${extra}Content-Length: ${bytes.length}\r\n\r\n`, 'latin1'),
    bytes,
  ]);
}

/**
 * The dump files, without the writer's temp files: it writes `.<name>.<hex>.tmp`,
 * links it to its name, then unlinks it, so for a moment both are listed
 * (counting it made a full run fail).
 */
function files(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .sort();
}

function read(dir: string, name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Record<string, unknown>;
}

/** The n-th exchange's file of that kind, once the writer has made it. */
function waitFile(dir: string, n: number, kind: 'request' | 'response'): Promise<string> {
  const prefix = String(n).padStart(6, '0');
  return waitFor(`${prefix} ${kind} file`, () => {
    const f = fs.readdirSync(dir).find((x) => x.startsWith(`${prefix}-`) && x.endsWith(`-${kind}.json`));
    if (!f) return undefined;
    // Written in one call after an exclusive create: wait until it parses.
    try {
      JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      return f;
    } catch {
      return undefined;
    }
  });
}

interface Setup {
  up: Upstream;
  proxy: Proxy;
  root: string;
  dir: string;
}

async function setup(respond: Responder, args: string[] = []): Promise<Setup> {
  const root = tmpDir();
  const dir = path.join(root, 'dumps', 'nested');
  const up = await startUpstream(respond);
  const proxy = await startProxy(['--upstream-url', up.url, '--dump-dir', dir, ...args], { serverInfo: path.join(root, 'info.json') });
  return { up, proxy, root, dir };
}

async function teardown(s: Setup): Promise<void> {
  await s.proxy.stop();
  await s.up.close();
  fs.rmSync(s.root, { recursive: true, force: true });
}

/** Reads until the proxy closes (Connection: close, or an abort). */
function exchange(port: number, req: Buffer, until: (d: Buffer) => boolean = responsesComplete) {
  return rawExchange(port, [req], { until });
}

describe('dump files: names, numbering, timing, shape, redaction', () => {
  const resBody = '{"id":"resp_1","output":[{"type":"message"}]}';
  let release: (() => void) | null = null;
  let s: Setup;
  before(async () => {
    s = await setup((req, sock) => {
      const body = resBody;
      const answer = (): void =>
        void sock.write(
          'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nSet-Cookie: session=upstream-cookie-value\r\nX-B: 1\r\n' +
            'X-Api-Key: upstream-api-key-value\r\nx-a: 2\r\nX-B: 3\r\nOpenAI-Refresh-TOKEN: upstream-token-value\r\n' +
            `Content-Length: ${body.length}\r\n\r\n${body}`,
        );
      // A request asking for it is held until the test releases it.
      if (req.head.includes('X-Gate: 1')) release = answer;
      else answer();
    });
  });
  after(() => teardown(s));

  test('a refused request gets no file and no number; admitted ones are numbered from 000001', async () => {
    const refused = await exchange(s.proxy.port, Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${s.proxy.port}\r\n\r\n`));
    assert.equal(refused.status, 403);
    const t0 = Date.now();
    const res = await exchange(s.proxy.port, post(s.proxy.port, '{"model":"m","input":"hi"}'));
    const t1 = Date.now();
    assert.equal(res.status, 200);
    const req = await waitFile(s.dir, 1, 'request');
    const resp = await waitFile(s.dir, 1, 'response');
    const [, seq, ms] = NAME.exec(req)!;
    assert.equal(seq, '000001');
    assert.ok(Number(ms) >= t0 && Number(ms) <= t1, `${ms} within [${t0}, ${t1}]`);
    // The same time in both names.
    assert.equal(resp, req.replace('-request.json', '-response.json'));
    assert.deepEqual(files(s.dir), [req, resp]);
  });

  test('the request file is written before the upstream answers; the response file when it ends', async () => {
    const before = files(s.dir).length;
    const pending = exchange(s.proxy.port, post(s.proxy.port, '{"gated":true}', 'X-Gate: 1\r\n'));
    const req = await waitFile(s.dir, 2, 'request');
    const answer = await waitFor('the upstream to hold the request', () => release);
    // The upstream has not answered: no response file yet.
    assert.deepEqual(files(s.dir).length, before + 1);
    assert.deepEqual(read(s.dir, req)['body'], { gated: true });
    answer();
    assert.equal((await pending).status, 200);
    await waitFile(s.dir, 2, 'response');
  });

  test('JSON shape: pretty 2-space, client headers in wire order and case with duplicates, response headers as sent', async () => {
    const body = '{"model":"gpt-5","input":[{"role":"user","content":"héllo"}],"stream":false}';
    const head =
      `POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${s.proxy.port}\r\nx-dup: one\r\nContent-Type: application/json\r\n` +
      `X-DUP: two\r\nOpenAI-Beta: responses=v1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    await exchange(s.proxy.port, Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]));
    const reqFile = await waitFile(s.dir, 3, 'request');
    const resFile = await waitFile(s.dir, 3, 'response');
    const text = fs.readFileSync(path.join(s.dir, reqFile), 'utf8');
    const reqJson = JSON.parse(text) as unknown;
    assert.equal(text, `${JSON.stringify(reqJson, null, 2)}\n`);
    assert.deepEqual(reqJson, {
      method: 'POST',
      url: '/v1/responses',
      headers: [
        { name: 'Host', value: `127.0.0.1:${s.proxy.port}` },
        { name: 'x-dup', value: 'one' },
        { name: 'Content-Type', value: 'application/json' },
        { name: 'X-DUP', value: 'two' },
        { name: 'OpenAI-Beta', value: 'responses=v1' },
        { name: 'Content-Length', value: String(Buffer.byteLength(body)) },
      ],
      body: JSON.parse(body),
    });
    assert.deepEqual(read(s.dir, resFile), {
      status: 200,
      headers: [
        { name: 'content-type', value: 'application/json' },
        { name: 'Set-Cookie', value: '[REDACTED]' },
        { name: 'X-B', value: '1' },
        { name: 'X-Api-Key', value: '[REDACTED]' },
        { name: 'x-a', value: '2' },
        { name: 'X-B', value: '3' },
        { name: 'OpenAI-Refresh-TOKEN', value: '[REDACTED]' },
        { name: 'Content-Length', value: String(resBody.length) },
      ],
      body: { id: 'resp_1', output: [{ type: 'message' }] },
    });
  });

  test('every credential header is redacted in any case; the injected key never appears', async () => {
    const secrets: [string, string][] = [
      ['authorization', `Bearer ${PROJECT_KEY}`],
      ['AUTHORIZATION', 'Basic Zm9vOmJhcg=='],
      ['Proxy-Authorization', 'Basic cHJveHk6cHc='],
      ['cookie', 'sid=cookie-secret-1'],
      ['Set-Cookie', 'a=set-cookie-secret'],
      ['API-KEY', 'azure-api-key-secret-0123456789abcdef'],
      ['x-api-key', 'sk-ant-x-api-key-secret'],
      ['X-Goog-Api-Key', 'AIzaSy-goog-key-secret'],
      ['X-Auth-Token', 'auth-token-secret'],
      ['x-amz-security-token', 'amz-session-secret'],
      ['X-GitHub-Token', 'ghs_token-in-name-secret'],
      ['Client-Secret', 'secret-in-name-value'],
      ['X-Session-Cookie', 'cookie-in-name-value'],
    ];
    const extra = secrets.map(([n, v]) => `${n}: ${v}\r\n`).join('') + 'X-Plain: visible\r\n';
    const res = await exchange(s.proxy.port, post(s.proxy.port, '{"input":"x"}', extra));
    assert.equal(res.status, 200);
    const reqFile = await waitFile(s.dir, 4, 'request');
    const resFile = await waitFile(s.dir, 4, 'response');
    const headers = read(s.dir, reqFile)['headers'] as { name: string; value: string }[];
    for (const [n] of secrets) assert.deepEqual(headers.find((h) => h.name === n), { name: n, value: '[REDACTED]' });
    assert.deepEqual(headers.find((h) => h.name === 'X-Plain'), { name: 'X-Plain', value: 'visible' });
    for (const f of files(s.dir)) {
      const text = fs.readFileSync(path.join(s.dir, f), 'utf8');
      for (const [, v] of secrets) assert.ok(!text.includes(v), `${f} holds ${v}`);
      for (const v of ['upstream-cookie-value', 'upstream-api-key-value', 'upstream-token-value', KEY, 'Bearer sk-test']) {
        assert.ok(!text.includes(v), `${f} holds ${v}`);
      }
    }
    // The upstream did get the relay's key, not the client's.
    assert.ok(s.up.received.at(-1)!.head.toString('latin1').includes(`Authorization: Bearer ${KEY}\r\n`));
    assert.ok(fs.existsSync(path.join(s.dir, resFile)));
  });
});

describe('dump bodies: chunked, SSE, non-JSON, encodings, cap', () => {
  const zstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  const payload = Buffer.from('{"encoded":"yes","n":[1,2,3]}');
  const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x61));
  const encoded: Record<string, [string, Buffer]> = {
    gzip: ['gzip', zlib.gzipSync(payload)],
    deflate: ['deflate', zlib.deflateSync(payload)],
    br: ['br', zlib.brotliCompressSync(payload)],
    zstd: ['zstd', zstd ? zstd(payload) : Buffer.from('28b52ffd2000490000007b7d', 'hex')],
    unknown: ['compress', Buffer.from([0x1f, 0x9d, 0x90, 0x7b, 0x00])],
    bomb: ['gzip', bomb],
  };
  const big = Buffer.alloc(CAP + 1024 * 1024, 0x62);
  let s: Setup;
  before(async () => {
    s = await setup((req, sock) => {
      const mode = /X-Mode: (\S+)/.exec(req.head.toString('latin1'))?.[1] ?? 'json';
      if (mode === 'sse') {
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
        for (const ev of ['event: response.created\ndata: {"a":1}\n\n', 'event: response.completed\ndata: {"b":2}\n\n']) {
          sock.write(`${Buffer.byteLength(ev).toString(16)}\r\n${ev}\r\n`);
        }
        sock.write('0\r\n\r\n');
      } else if (mode === 'text') {
        sock.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n'), Buffer.from('caf\xe9 \xff ok', 'latin1')]));
      } else if (mode === 'big') {
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
        sock.write(big);
      } else {
        const [enc, bytes] = encoded[mode]!;
        sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: ${enc}\r\nContent-Length: ${bytes.length}\r\n\r\n`);
        sock.write(bytes);
      }
    });
  });
  after(() => teardown(s));
  let n = 0;

  test('a chunked request is dumped de-chunked; an SSE response is one string', async () => {
    const chunked = '6;ext=1\r\n{"a":1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n';
    const req = Buffer.from(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${s.proxy.port}\r\nX-Mode: sse\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
    await exchange(s.proxy.port, req, (d) => d.includes('0\r\n\r\n'));
    n++;
    assert.deepEqual(read(s.dir, await waitFile(s.dir, n, 'request'))['body'], { a: 1 });
    assert.equal(read(s.dir, await waitFile(s.dir, n, 'response'))['body'], 'event: response.created\ndata: {"a":1}\n\nevent: response.completed\ndata: {"b":2}\n\n');
  });

  test('a body that is not JSON is one string, lossy UTF-8', async () => {
    await exchange(s.proxy.port, post(s.proxy.port, Buffer.from('not json \xff', 'latin1'), 'X-Mode: text\r\n'));
    n++;
    assert.equal(read(s.dir, await waitFile(s.dir, n, 'request'))['body'], 'not json \ufffd');
    assert.equal(read(s.dir, await waitFile(s.dir, n, 'response'))['body'], 'caf\ufffd \ufffd ok');
  });

  for (const mode of ['gzip', 'deflate', 'br', 'zstd', 'unknown'] as const) {
    const decodable = mode !== 'unknown' && (mode !== 'zstd' || zstd !== undefined);
    test(`${mode}: the client gets the upstream's bytes; the dump ${decodable ? 'decodes' : 'keeps base64 and the encoding'}`, async () => {
      const [enc, bytes] = encoded[mode]!;
      const res = await exchange(s.proxy.port, post(s.proxy.port, '{}', `X-Mode: ${mode}\r\n`));
      assert.deepEqual(res.data.subarray(res.data.indexOf('\r\n\r\n') + 4), bytes);
      n++;
      const dump = read(s.dir, await waitFile(s.dir, n, 'response'));
      assert.deepEqual((dump['headers'] as { name: string; value: string }[])[1], { name: 'Content-Encoding', value: enc });
      if (decodable) {
        assert.deepEqual(dump['body'], JSON.parse(payload.toString()));
        assert.equal(dump['content_encoding'], undefined);
      } else {
        assert.equal(dump['body'], bytes.toString('base64'));
        assert.equal(dump['body_encoding'], 'base64');
        assert.equal(dump['content_encoding'], enc);
      }
    });
  }

  test('a request body with Content-Encoding is forwarded as sent and dumped decoded', async () => {
    const gz = zlib.gzipSync(Buffer.from('{"compressed":"request"}'));
    await exchange(s.proxy.port, post(s.proxy.port, gz, 'X-Mode: gzip\r\nContent-Encoding: gzip\r\n'));
    assert.ok(s.up.received.at(-1)!.body.equals(gz));
    n++;
    assert.deepEqual(read(s.dir, await waitFile(s.dir, n, 'request'))['body'], { compressed: 'request' });
    await waitFile(s.dir, n, 'response');
  });

  test('a gzip bomb is decoded only up to the cap and marked truncated', async () => {
    const res = await exchange(s.proxy.port, post(s.proxy.port, '{}', 'X-Mode: bomb\r\n'));
    assert.equal(res.data.length - res.data.indexOf('\r\n\r\n') - 4, bomb.length);
    n++;
    const dump = read(s.dir, await waitFile(s.dir, n, 'response'));
    assert.equal(dump['truncated'], true);
    assert.equal(dump['body_bytes'], bomb.length);
    assert.equal((dump['body'] as string).length, CAP);
  });

  test(`bodies past ${CAP} bytes are cut at the cap, marked, and relayed whole`, async () => {
    const body = Buffer.concat([Buffer.from('"'), Buffer.alloc(CAP + 100, 0x71), Buffer.from('"')]);
    const res = await rawExchange(s.proxy.port, [post(s.proxy.port, body, 'X-Mode: big\r\n')], { until: responsesComplete, ms: 30000 });
    assert.equal(res.data.length - res.data.indexOf('\r\n\r\n') - 4, big.length);
    assert.ok(s.up.received.at(-1)!.body.equals(body));
    n++;
    const req = read(s.dir, await waitFile(s.dir, n, 'request'));
    assert.equal(req['truncated'], true);
    assert.equal(req['body_bytes'], body.length);
    assert.equal((req['body'] as string).length, CAP);
    const resp = read(s.dir, await waitFile(s.dir, n, 'response'));
    assert.equal(resp['truncated'], true);
    assert.equal(resp['body_bytes'], big.length);
    assert.equal(resp['body'], 'b'.repeat(CAP));
  });
});

describe('dump endings: client abort, upstream failure, no response head', () => {
  let s: Setup;
  before(async () => {
    s = await setup((req, sock) => {
      const mode = /X-Mode: (\S+)/.exec(req.head.toString('latin1'))?.[1];
      if (mode === 'close') return void sock.destroy();
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
      const ev = 'event: a\ndata: 1\n\n';
      sock.write(`${ev.length.toString(16)}\r\n${ev}\r\n`);
      // 'cut': the upstream dies mid-stream; 'hang': it waits for the client to leave.
      if (mode === 'cut') sock.end();
    });
  });
  after(() => teardown(s));

  test('a client that leaves mid-stream: the response file holds what was relayed, ended client_abort', async () => {
    const res = await exchange(s.proxy.port, post(s.proxy.port, '{}', 'X-Mode: hang\r\n'), (d) => d.includes('data: 1\n\n'));
    assert.equal(res.status, 200);
    const dump = read(s.dir, await waitFile(s.dir, 1, 'response'));
    assert.equal(dump['body'], 'event: a\ndata: 1\n\n');
    assert.equal(dump['ended'], 'client_abort');
  });

  test('an upstream that dies mid-stream: the response file holds what arrived, ended upstream_protocol', async () => {
    const res = await exchange(s.proxy.port, post(s.proxy.port, '{}', 'X-Mode: cut\r\n'), () => false);
    assert.ok(res.closed);
    const dump = read(s.dir, await waitFile(s.dir, 2, 'response'));
    assert.equal(dump['body'], 'event: a\ndata: 1\n\n');
    assert.equal(dump['ended'], 'upstream_protocol');
  });

  test('no response head: a request file and no response file', async () => {
    const res = await exchange(s.proxy.port, post(s.proxy.port, '{"n":3}', 'X-Mode: close\r\n'));
    assert.equal(res.status, 502);
    // The writer keeps the relay's order: once exchange 4's response file is
    // there, anything for exchange 3 would have been written before it.
    await exchange(s.proxy.port, post(s.proxy.port, '{}', 'X-Mode: cut\r\n'), () => false);
    await waitFile(s.dir, 4, 'response');
    assert.deepEqual(read(s.dir, await waitFile(s.dir, 3, 'request'))['body'], { n: 3 });
    assert.ok(!files(s.dir).some((f) => f.startsWith('000003-') && f.endsWith('-response.json')));
  });
});

describe('dump directory: creation, mode, unwritable', () => {
  test('created with parents, 0700; files 0600 whatever the umask', async () => {
    const old = process.umask(0);
    let s: Setup;
    try {
      s = await setup((_req, sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'));
    } finally {
      process.umask(old);
    }
    try {
      await exchange(s.proxy.port, post(s.proxy.port, '{}'));
      const f = await waitFile(s.dir, 1, 'response');
      assert.equal(fs.statSync(s.dir).mode & 0o777, 0o700);
      assert.equal(fs.statSync(path.dirname(s.dir)).mode & 0o777, 0o700);
      for (const name of [f, await waitFile(s.dir, 1, 'request')]) assert.equal(fs.statSync(path.join(s.dir, name)).mode & 0o777, 0o600);
    } finally {
      await teardown(s);
    }
  });

  test('a directory that stops being writable: relaying goes on, one stderr line a minute for the failed files', async () => {
    const s = await setup((_req, sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'));
    try {
      // Root ignores permission bits, so the directory is replaced by a file.
      fs.rmSync(s.dir, { recursive: true });
      fs.writeFileSync(s.dir, '');
      const res = await exchange(s.proxy.port, post(s.proxy.port, '{}'));
      assert.equal(res.status, 200);
      await waitFor('the failure line', () => s.proxy.stderr().includes('cannot write dump'));
      assert.match(s.proxy.stderr(), /cannot write dump 000001-\d{13}-request\.json \(ENOTDIR\)\n/);
      // Writable again: the next exchange is dumped. A failure of exchange 1's
      // response file would fall within the same minute: never a second line.
      fs.rmSync(s.dir);
      fs.mkdirSync(s.dir);
      assert.equal((await exchange(s.proxy.port, post(s.proxy.port, '{}'))).status, 200);
      await waitFile(s.dir, 2, 'response');
      assert.equal((s.proxy.stderr().match(/cannot write dump/g) ?? []).length, 1);
    } finally {
      await teardown(s);
    }
  });
});

describe('--dump-dir on the command line', () => {
  test("--dump-dir '' is a usage error (exit 2)", async () => {
    const r = await runCli(['--dump-dir', '', '--upstream-url', 'http://127.0.0.1:9/v1/responses'], `${KEY}\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('a path that cannot be a directory: one line, exit 1, before listening', async () => {
    const root = tmpDir();
    try {
      const file = path.join(root, 'file');
      fs.writeFileSync(file, '');
      for (const dir of [file, path.join(file, 'sub')]) {
        const info = path.join(root, 'info.json');
        const r = await runCli(['--dump-dir', dir, '--server-info', info, '--upstream-url', 'http://127.0.0.1:9/v1/responses'], `${KEY}\n`);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^codex-responses-api-proxy: cannot create --dump-dir .* \((EEXIST|ENOTDIR)\)\n$/);
        assert.ok(!fs.existsSync(info));
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('--help lists --dump-dir', async () => {
    const help = await runCli(['--help'], '');
    assert.match(help.stdout, /--dump-dir/);
  });
});

describe('dump memory across exchanges', () => {
  test(`all open dumps together hold at most ${DUMP_BUDGET} bytes; past it a dump is cut, never holed`, async () => {
    const root = tmpDir();
    const logs: string[] = [];
    try {
      const dump = new Dump(root, (l) => logs.push(l));
      const req = post(1, '{}');
      const head = splitRequestHead(req.subarray(0, req.indexOf('\r\n\r\n') + 4))!;
      const chunk = Buffer.alloc(CAP, 0x61);
      // Open exchanges, each holding a full cap of request body, fill the budget.
      const open = Array.from({ length: DUMP_BUDGET / CAP }, () => dump.open(head));
      for (const t of open) t.requestBody(chunk);
      const late = dump.open(head);
      late.requestBody(Buffer.from('{"late":'));
      // Budget given back (an open dump ends and is written): still nothing more
      // is kept for the late dump, so its body is a prefix of what was sent.
      open[0]!.end('client_abort');
      await waitFor('the first dump written', () => files(root).length === 1 && logs.length === 0);
      late.requestBody(Buffer.from('true}'));
      late.requestEnd();
      const f = await waitFor('the late dump', () => fs.readdirSync(root).find((x) => x.startsWith(String(DUMP_BUDGET / CAP + 1).padStart(6, '0'))));
      const rec = await waitFor('the late dump to parse', () => {
        try {
          return JSON.parse(fs.readFileSync(path.join(root, f), 'utf8')) as Record<string, unknown>;
        } catch {
          return undefined;
        }
      });
      assert.equal(rec['body'], '');
      assert.equal(rec['truncated'], true);
      assert.equal(rec['body_bytes'], 13);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
