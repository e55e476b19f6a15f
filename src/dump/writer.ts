// The --dump-dir writer thread (tap.ts starts it): everything a dump costs
// beyond copying bytes happens here, off the relay's event loop: de-chunking,
// decoding Content-Encoding, JSON parsing and pretty-printing, file writes.
// Records are written one at a time, in the order the relay sent them, so a
// request file always lands before its response file and at most one decoded
// body (DUMP_CAP bytes) is held here at once.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import zlib from 'node:zlib';
import { DUMP_CAP, type DumpRecord, type WriterReply } from './tap.js';

// On Linux a nice value belongs to the thread, so this lowers only the
// writer's share of the CPU: on a busy machine the relay's own thread runs
// first, and a dump waits instead of a relayed byte. (Elsewhere
// setpriority(0) would renice the whole process, so it is left alone.)
if (process.platform === 'linux') os.setPriority(19);

let queue = Promise.resolve();

parentPort!.on('message', ({ rec, reserved }: { rec: DumpRecord; reserved: number }) => {
  queue = queue.then(async () => {
    const reply: WriterReply = { released: reserved };
    try {
      await writeFile(rec.file, `${JSON.stringify(await render(rec), null, 2)}\n`);
    } catch (err) {
      reply.error = `cannot write dump ${path.basename(rec.file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).name})`;
    }
    parentPort!.postMessage(reply);
  });
});

/**
 * 'wx' (O_EXCL) never follows or overwrites what is already there; the
 * explicit chmod makes the mode 0600 whatever the umask, because a dump holds
 * prompts and answers.
 */
async function writeFile(file: string, text: string): Promise<void> {
  const fh = await fs.open(file, 'wx', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

async function render(rec: DumpRecord): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> =
    rec.kind === 'request' ? { method: rec.method, url: rec.url, headers: rec.headers } : { status: rec.status, headers: rec.headers };
  let truncated = rec.truncated;
  let data: Buffer = Buffer.concat(rec.body);
  if (rec.chunked) data = dechunk(data);
  if (rec.encoding) {
    const decoded = await decode(rec.encoding, data, truncated);
    if (!decoded) {
      // Not decodable here: the exact bytes, and what they were encoded with.
      out['body'] = data.toString('base64');
      out['body_encoding'] = 'base64';
      out['content_encoding'] = rec.encoding;
      return withNotes(out, rec, truncated);
    }
    data = decoded.data;
    truncated ||= decoded.capped;
  }
  out['body'] = bodyValue(data, truncated);
  return withNotes(out, rec, truncated);
}

function withNotes(out: Record<string, unknown>, rec: DumpRecord, truncated: boolean): Record<string, unknown> {
  if (truncated) {
    out['truncated'] = true;
    out['body_bytes'] = rec.bodyBytes;
  }
  if (rec.incomplete) out['incomplete'] = true;
  if (rec.ended) out['ended'] = rec.ended;
  return out;
}

/** The parsed JSON value when the whole body is JSON, else the text (lossy UTF-8). */
function bodyValue(data: Buffer, truncated: boolean): unknown {
  const text = data.toString('utf8');
  if (truncated) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * The data of a chunked body (RFC 9112 §7.1). The relay has already checked
 * its framing; a body cut short (cap, abort) yields what arrived.
 */
export function dechunk(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(buf.toString('latin1', i, eol).split(';')[0]!.trim(), 16);
    if (!(size > 0)) break;
    const start = eol + 2;
    parts.push(buf.subarray(start, Math.min(start + size, buf.length)));
    i = start + size + 2;
  }
  return Buffer.concat(parts);
}

// zstd is decoded only where this Node has it (22.15+, 23.8+); elsewhere the
// body is kept as base64. The cast is for @types/node 20, which lacks it.
const createZstd = (zlib as unknown as { createZstdDecompress?: () => zlib.Gunzip }).createZstdDecompress;

function decoder(encoding: string): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | null {
  // Flush modes that yield what a cut-short input holds instead of failing on it.
  const flush = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip(flush);
    case 'deflate':
      return zlib.createInflate(flush);
    case 'br':
      return zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH });
    case 'zstd':
      return createZstd ? createZstd() : null;
    default:
      // Unknown codings, and stacked ones ("gzip, br"), stay encoded.
      return null;
  }
}

/**
 * Decodes at most DUMP_CAP bytes of output, so a small compressed body that
 * expands to gigabytes (a zip bomb) costs no more than a large plain one.
 * Null when it cannot be decoded; a body cut short keeps what decoded.
 */
function decode(encoding: string, input: Buffer, cut: boolean): Promise<{ data: Buffer; capped: boolean } | null> {
  const z = decoder(encoding);
  if (!z) return Promise.resolve(null);
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let n = 0;
    let settled = false;
    const settle = (ok: boolean, capped: boolean): void => {
      if (settled) return;
      settled = true;
      z.destroy();
      resolve(ok ? { data: Buffer.concat(parts, n), capped } : null);
    };
    z.on('data', (d: Buffer) => {
      const take = Math.min(d.length, DUMP_CAP - n);
      parts.push(take === d.length ? d : d.subarray(0, take));
      n += take;
      if (take < d.length) settle(true, true);
    });
    z.on('end', () => settle(true, false));
    z.on('error', () => settle(cut && n > 0, false));
    z.end(input);
  });
}
