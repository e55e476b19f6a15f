// The fake upstream, run as its own process so that its sends are not delayed
// by the client's reads (and the other way round). It serves the same handler
// over http and https and prints `{"http":P,"https":Q}` on stdout.
//
// The request body names the scenario:
//   {"bench":{"kind":"sse","events":200,"intervalMs":10,"size":120}}
//   {"bench":{"kind":"bulk","bytes":200000000}}
//   {"bench":{"kind":"json"}}
// Each SSE event carries its index and the process.hrtime.bigint() read just
// before its write; the client subtracts it from the arrival time.
//
// Usage: node upstream.js CERT.pem KEY.pem   (the API key comes in BENCH_KEY)
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

const key = process.env['BENCH_KEY'] ?? '';
const [certFile, keyFile] = process.argv.slice(2);

interface Scenario {
  kind: 'sse' | 'bulk' | 'json';
  events?: number;
  intervalMs?: number;
  size?: number;
  bytes?: number;
}

const BODY_CAP = 64 * 1024;
const BULK_BLOCK = Buffer.alloc(64 * 1024, 'x');

async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
  res.socket?.setNoDelay(true);
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > BODY_CAP) return void res.writeHead(413).end();
  }
  if (req.method !== 'POST' || req.headers.authorization !== `Bearer ${key}`) {
    return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad key"}');
  }
  let s: Scenario;
  try {
    s = (JSON.parse(body) as { bench: Scenario }).bench;
  } catch {
    return void res.writeHead(400).end();
  }
  if (s.kind === 'json') {
    return void res
      .writeHead(200, { 'content-type': 'application/json' })
      .end('{"id":"resp_bench","object":"response","status":"completed","output":[]}');
  }
  if (s.kind === 'bulk') return bulk(res, s.bytes ?? 0);
  return sse(res, s.events ?? 0, s.intervalMs ?? 10, s.size ?? 120);
}

function sse(res: http.ServerResponse, events: number, intervalMs: number, size: number) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed) return void clearInterval(timer);
    const t = process.hrtime.bigint();
    const data = `data: {"type":"bench.delta","i":${i},"t":"${t}","pad":"`;
    const tail = '"}\n\n';
    res.write(data + 'x'.repeat(Math.max(0, size - data.length - tail.length)) + tail);
    if (++i === events) {
      clearInterval(timer);
      res.end();
    }
  }, intervalMs);
  res.on('close', () => clearInterval(timer));
}

async function bulk(res: http.ServerResponse, bytes: number) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
  let left = bytes;
  while (left > 0 && !res.destroyed) {
    const block = left >= BULK_BLOCK.length ? BULK_BLOCK : BULK_BLOCK.subarray(0, left);
    left -= block.length;
    if (!res.write(block)) await drainOrClose(res);
  }
  res.end();
}

// One listener pair per wait, removed after: a 200 MB download waits thousands of times.
function drainOrClose(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
  handle(req, res).catch(() => res.destroy());
};

const plain = http.createServer({ noDelay: true, keepAliveTimeout: 60_000 }, onRequest);
const tls = https.createServer(
  { cert: readFileSync(certFile!), key: readFileSync(keyFile!), noDelay: true, keepAliveTimeout: 60_000 },
  onRequest,
);
for (const s of [plain, tls]) s.maxHeadersCount = 100;
await Promise.all([once(plain.listen(0, '127.0.0.1'), 'listening'), once(tls.listen(0, '127.0.0.1'), 'listening')]);
const port = (s: http.Server) => (s.address() as AddressInfo).port;
process.stdout.write(JSON.stringify({ http: port(plain), https: port(tls) }) + '\n');
// The parent stops us by PID; also go when the parent's pipe closes.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
