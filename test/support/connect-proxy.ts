// An egress proxy for tests, over raw sockets: it records every byte each
// connection sends it and, by `mode`, tunnels a CONNECT to the test's
// upstream, forwards an absolute-form request to it, refuses with 407,
// stalls, closes mid-handshake, or answers with bytes after its 200 head.
// It ignores the host a request names: every tunnel leads to `targetPort`.
import net from 'node:net';

export type ProxyMode = 'tunnel' | 'refuse' | 'stall' | 'close-mid-handshake' | 'extra-bytes';

export interface ConnectProxy {
  port: number;
  url: string;
  mode: ProxyMode;
  /** Every byte each client connection sent, in connection order (tunnelled bytes included). */
  readonly raw: Buffer[];
  /** The first request head of each connection, as latin1 text. */
  heads: string[];
  connections: number;
  close: () => Promise<void>;
}

/** A body the proxy sends with a refusal: it must never reach the relay's client. */
export const REFUSAL_BODY = 'proxy-refusal-body-secret-text';

export async function startConnectProxy(targetPort: number, mode: ProxyMode = 'tunnel'): Promise<ConnectProxy> {
  const rawParts: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const cp: ConnectProxy = {
    port: 0,
    url: '',
    mode,
    get raw() {
      return rawParts.map((p) => Buffer.concat(p));
    },
    heads: [],
    connections: 0,
    close: async () => {},
  };
  const server = net.createServer((sock) => {
    cp.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    const raw: Buffer[] = [];
    rawParts.push(raw);
    let head = Buffer.alloc(0);
    let upstream: net.Socket | null = null;
    const onData = (d: Buffer): void => {
      raw.push(d);
      if (upstream) return void upstream.write(d);
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = head.toString('latin1', 0, end + 4);
      const rest = head.subarray(end + 4);
      cp.heads.push(text);
      const connect = text.startsWith('CONNECT ');
      switch (cp.mode) {
        case 'stall':
          return;
        case 'refuse':
          sock.end(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: ${REFUSAL_BODY.length}\r\n\r\n${REFUSAL_BODY}`);
          return;
        case 'close-mid-handshake':
          // Answer 200, let the ClientHello arrive, then cut the tunnel.
          sock.write('HTTP/1.1 200 Connection established\r\n\r\n');
          sock.once('data', () => sock.destroy());
          return;
        case 'extra-bytes':
          sock.write('HTTP/1.1 200 Connection established\r\n\r\nSURPRISE');
          return;
        case 'tunnel':
          upstream = net.connect(targetPort, '127.0.0.1');
          sockets.add(upstream);
          upstream.on('close', () => sockets.delete(upstream!));
          upstream.on('error', () => sock.destroy());
          upstream.on('data', (u: Buffer) => sock.write(u));
          upstream.on('end', () => sock.end());
          sock.on('end', () => upstream?.end());
          if (connect) {
            upstream.once('connect', () => sock.write('HTTP/1.1 200 Connection established\r\n\r\n'));
            if (rest.length) upstream.write(rest);
          } else {
            // A forward-proxy request: pass the head and what follows as they came.
            upstream.write(head);
          }
          return;
      }
    };
    sock.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cp.port = (server.address() as net.AddressInfo).port;
  cp.url = `http://127.0.0.1:${cp.port}`;
  cp.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return cp;
}
