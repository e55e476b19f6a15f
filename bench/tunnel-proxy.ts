// A minimal CONNECT proxy for the bench's relay-https-connect path, in its
// own process like the upstream: it reads one CONNECT head, answers 200 and
// then pipes bytes both ways, to 127.0.0.1 at the port the CONNECT names
// (the name itself is the bench's made-up api.bench.test). Prints
// {"port":N} once listening.
import net from 'node:net';

const server = net.createServer((client) => {
  client.setNoDelay(true);
  client.on('error', () => client.destroy());
  let head = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    head = Buffer.concat([head, d]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 16384) client.destroy();
      return;
    }
    client.removeListener('data', onData);
    const m = /^CONNECT [^\s]+:(\d+) HTTP\/1\.1\r\n/.exec(head.toString('latin1', 0, end + 2));
    if (!m) return void client.end('HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n');
    const up = net.connect(Number(m[1]), '127.0.0.1', () => {
      up.setNoDelay(true);
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      const rest = head.subarray(end + 4);
      if (rest.length) up.write(rest);
      client.pipe(up);
      up.pipe(client);
    });
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
  };
  client.on('data', onData);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
