// The proxy a user might write in an afternoon: node:http in front, fetch
// behind, the body read whole, the response piped back with for-await.
// It takes the same stdin key and flags as the real one (only the ones the
// bench uses), so the bench can start every path the same way.
//
// Usage: printf 'KEY\n' | node naive-proxy.js --upstream-url URL --server-info FILE
import http from 'node:http';
import { once } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

const flag = (name: string) => process.argv[process.argv.indexOf(name) + 1] ?? '';
const upstream = flag('--upstream-url');
const infoFile = flag('--server-info');
const key = readFileSync(0, 'utf8').trim();

// Connection-level headers that must not be copied between hops (RFC 9110 §7.6.1).
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

const server = http.createServer(async (req, res) => {
  try {
    if (req.method !== 'POST' || req.url !== '/v1/responses') return void res.writeHead(403).end();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const r = await fetch(upstream, {
      method: 'POST',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json', authorization: `Bearer ${key}` },
      body: Buffer.concat(chunks),
    });
    const headers: Record<string, string> = {};
    r.headers.forEach((v, k) => {
      if (!HOP.has(k)) headers[k] = v;
    });
    res.writeHead(r.status, headers);
    if (r.body) for await (const chunk of r.body) res.write(chunk);
    res.end();
  } catch {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  }
});
await once(server.listen(0, '127.0.0.1'), 'listening');
writeFileSync(infoFile + '.tmp', JSON.stringify({ port: (server.address() as AddressInfo).port, pid: process.pid }) + '\n');
renameSync(infoFile + '.tmp', infoFile);
