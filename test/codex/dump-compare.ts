// Opt-in, not part of `npm test`: drives the original `codex responses-api-proxy
// --dump-dir` and this relay with the same fake upstream and the same requests,
// under umask 0, and prints each one's dump files side by side, so the README's
// Differences rows for --dump-dir can be checked again:
//
//   npm run build && node dist/test/codex/dump-compare.js /path/to/codex
//
// Loopback only; each proxy gets a fresh dump folder, removed at the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { CLI, KEY, rawExchange, startUpstream, tmpDir, waitFor } from '../support/harness.js';

const codex = process.argv[2];
if (!codex || !fs.existsSync(codex)) {
  process.stderr.write('usage: node dist/test/codex/dump-compare.js /path/to/codex\n');
  process.exit(2);
}

const json = '{"id":"r1","n":1}';
const sse = ['event: a\ndata: {"x":1}\n\n', 'event: b\ndata: {"x":2}\n\n'].map((e) => `${Buffer.byteLength(e).toString(16)}\r\n${e}\r\n`).join('');
const encoded = (enc: string, body: Buffer) => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: ${enc}\r\nContent-Length: ${body.length}\r\n\r\n${body.toString('latin1')}`;
const answers: Record<string, string | null> = {
  json: `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\nX-B: 1\r\nX-Api-Key: up-secret\r\nX-A: 2\r\nX-B: 3\r\nX-Session-Token: tt\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
  sse: `HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n${sse}0\r\n\r\n`,
  text: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nnot \xffjson!',
  gzip: encoded('gzip', zlib.gzipSync('{"z":"gzip"}')),
  deflate: encoded('deflate', zlib.deflateSync('{"z":"deflate"}')),
  br: encoded('br', zlib.brotliCompressSync('{"z":"br"}')),
  // An upstream that closes without answering, then one that dies mid-stream.
  close: null,
  partial: 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
  // Streams until the client leaves.
  abort: 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
};

const up = await startUpstream((req, sock) => {
  const mode = /x-mode: (\w+)/i.exec(req.head.toString('latin1'))![1]!;
  const answer = answers[mode];
  if (answer === null || answer === undefined) return void sock.destroy();
  sock.write(Buffer.from(answer, 'latin1'));
  if (mode === 'partial') setTimeout(() => sock.destroy(), 200);
});

interface Running {
  port: number;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Either proxy, as users run it: the key on stdin, --server-info to learn the port. */
async function start(cmd: string, args: string[], info: string): Promise<Running> {
  const proc = spawn(cmd, [...args, '--server-info', info], { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', CODEX_HOME: path.dirname(info) } });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdin!.end(`${KEY}\n`);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const text = await waitFor(`server-info from ${cmd}`, () => fs.existsSync(info) && fs.readFileSync(info, 'utf8'));
  return {
    port: (JSON.parse(text) as { port: number }).port,
    stderr: () => err,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function drive(p: Running): Promise<void> {
  const host = `Host: 127.0.0.1:${p.port}\r\n`;
  const secrets = 'Authorization: Bearer client-secret\r\nCookie: c=1\r\napi-key: AK\r\nProxy-Authorization: Basic PA\r\nX-Api-Key: XK\r\nX-Goog-Api-Key: GK\r\nx-auth-token: AT\r\nX-Amz-Security-Token: AMZ\r\nMy-Secret-Thing: S\r\n';
  // Refused: must use no number.
  await rawExchange(p.port, [Buffer.from(`GET / HTTP/1.1\r\n${host}Connection: close\r\n\r\n`)], { quiet: true, ms: 3000 });
  for (const mode of Object.keys(answers)) {
    const body = mode === 'sse' ? '5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n' : '{"model":"m","input":"hi"}';
    const framing = mode === 'sse' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${body.length}\r\n`;
    const req = `POST /v1/responses HTTP/1.1\r\n${host}X-Mode: ${mode}\r\n${mode === 'json' ? secrets : ''}X-Dup: 1\r\nX-Dup: 2\r\nConnection: close\r\n${framing}\r\n${body}`;
    await rawExchange(p.port, [Buffer.from(req, 'latin1')], { quiet: true, ms: mode === 'abort' ? 500 : 3000 });
  }
}

const root = tmpDir();
const old = process.umask(0);
const results: Record<string, Record<string, string>> = {};
try {
  for (const [name, cmd] of [
    ['original', [codex, 'responses-api-proxy']],
    ['this relay', []],
  ] as const) {
    const dir = path.join(root, name.replace(' ', '-'), 'nested');
    const info = path.join(root, `${name.replace(' ', '-')}.json`);
    const args = ['--dump-dir', dir, '--upstream-url', up.url];
    const p = cmd.length ? await start(cmd[0], [cmd[1], ...args], info) : await start(process.execPath, [CLI, ...args], info);
    await drive(p);
    await new Promise((r) => setTimeout(r, 1000));
    await p.stop();
    const out: Record<string, string> = {};
    for (const f of fs.readdirSync(dir).sort()) {
      const mode = (fs.statSync(path.join(dir, f)).mode & 0o777).toString(8);
      out[f.replace(/-\d{13}-/, '-<ms>-')] = `${mode} ${JSON.stringify(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))}`;
    }
    out['(stderr)'] = p.stderr().trim().split('\n').slice(1).join(' | ');
    results[name] = out;
  }
} finally {
  process.umask(old);
  await up.close();
  fs.rmSync(root, { recursive: true, force: true });
}
const names = [...new Set(Object.values(results).flatMap((r) => Object.keys(r)))].sort();
const modes = ['refused', ...Object.keys(answers)];
for (const n of names) {
  const seq = /^(\d{6})/.exec(n)?.[1];
  process.stdout.write(`\n## ${n}${seq ? ` (${modes[Number(seq)]})` : ''}\n`);
  for (const [who, r] of Object.entries(results)) process.stdout.write(`${who.padEnd(10)} ${r[n] ?? '(no file)'}\n`);
}
