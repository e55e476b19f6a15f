// A floor, not a proxy: one upstream connection per client connection, the
// Authorization line spliced in after the request line of the first read, and
// then `pipe()` both ways with no parsing at all. Whatever this costs over
// direct, any Node relay pays; the relay's own cost is what it adds on top.
// (It assumes the whole request head arrives in one read, as the bench client
// sends it; it checks nothing and must never face a real client.)
//
// With an https upstream URL the upstream socket is a tls.connect one, trusting
// what Node trusts (the bench passes its CA in NODE_EXTRA_CA_CERTS, as it does
// for the relay): the floor over TLS. The last session ticket is offered on the
// next connect, since nginx reuses sessions and the relay pools connections;
// without it the floor would pay a full handshake per request that no peer pays.
//
// Usage: printf 'KEY\n' | node pipe-proxy.js --upstream-url URL --server-info FILE
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const flag = (name: string) => process.argv[process.argv.indexOf(name) + 1] ?? '';
const upstream = new URL(flag('--upstream-url'));
const infoFile = flag('--server-info');
const auth = Buffer.from(`Authorization: Bearer ${readFileSync(0, 'utf8').trim()}\r\n`);
const target = { host: upstream.hostname, port: Number(upstream.port) };

let session: Buffer | undefined;
function connectUpstream(): net.Socket {
  if (upstream.protocol !== 'https:') return net.connect(target);
  const s = tls.connect({ ...target, ...(session ? { session } : {}) });
  s.on('session', (ticket: Buffer) => (session = ticket));
  return s;
}

const server = net.createServer({ noDelay: true }, (client) => {
  const up = connectUpstream();
  up.setNoDelay(true);
  const cut = () => (client.destroy(), up.destroy());
  client.on('error', cut).on('close', cut);
  up.on('error', cut).on('close', cut);
  client.once('data', (first: Buffer) => {
    const eol = first.indexOf('\r\n') + 2;
    up.write(Buffer.concat([first.subarray(0, eol), auth, first.subarray(eol)]));
    client.pipe(up);
    up.pipe(client);
  });
});
await once(server.listen(0, '127.0.0.1'), 'listening');
writeFileSync(infoFile + '.tmp', JSON.stringify({ port: (server.address() as net.AddressInfo).port, pid: process.pid }) + '\n');
renameSync(infoFile + '.tmp', infoFile);
