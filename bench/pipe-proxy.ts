// A floor, not a proxy: one upstream connection per client connection, the
// Authorization line spliced in after the request line of the first read, and
// then `pipe()` both ways with no parsing at all. Whatever this costs over
// direct, any Node relay pays; the relay's own cost is what it adds on top.
// (It assumes the whole request head arrives in one read, as the bench client
// sends it; it checks nothing and must never face a real client.)
//
// Usage: printf 'KEY\n' | node pipe-proxy.js --upstream-url URL --server-info FILE
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const flag = (name: string) => process.argv[process.argv.indexOf(name) + 1] ?? '';
const upstream = new URL(flag('--upstream-url'));
const infoFile = flag('--server-info');
const auth = Buffer.from(`Authorization: Bearer ${readFileSync(0, 'utf8').trim()}\r\n`);

const server = net.createServer({ noDelay: true }, (client) => {
  const up = net.connect({ host: upstream.hostname, port: Number(upstream.port) });
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
