// The --dump-dir writer thread (tap.ts starts it): everything a dump costs
// beyond copying bytes happens here, off the relay's event loop: de-chunking,
// decoding Content-Encoding, rendering (render.ts), file writes. Records are
// written one at a time, in the order the relay sent them, so a request file
// always lands before its response file, and one dump's memory is a few
// copies of DUMP_CAP: the body as framed, de-chunked, decoded, as text, its
// parsed value (bounded by render.ts) and the file's bytes (FILE_CAP).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import zlib from 'node:zlib';
import { renderFile, type Body } from './render.js';
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
      await save(rec.file, renderFile(rec, await body(rec)));
    } catch (err) {
      const line = failure(rec.file, err as NodeJS.ErrnoException);
      if (line) reply.error = line;
    }
    parentPort!.postMessage(reply);
  });
});

/**
 * A full disk fails every dump: one line a minute at most says so, and the
 * next line counts the failures it did not report.
 */
const WARN_EVERY_MS = 60_000;
let warned = -Infinity;
let unreported = 0;

function failure(file: string, err: NodeJS.ErrnoException): string | undefined {
  const now = performance.now();
  if (now - warned < WARN_EVERY_MS) {
    unreported++;
    return undefined;
  }
  warned = now;
  const more = unreported > 0 ? `; ${unreported} more failed since the last such line` : '';
  unreported = 0;
  return `cannot write dump ${path.basename(file)} (${err.code ?? err.name})${more}`;
}

/**
 * The file is written under a temporary name beside it, then linked to its
 * own, so a dump that fails (a full disk) leaves nothing behind and a reader
 * never sees half a file. Both names are created exclusively: 'wx' (O_EXCL)
 * never follows or overwrites what is already there, and link(2) fails rather
 * than replace an existing name. The explicit chmod makes the mode 0600
 * whatever the umask, because a dump holds prompts and answers.
 */
async function save(file: string, bytes: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'wx', 0o600);
  try {
    try {
      await fh.chmod(0o600);
      await fh.writeFile(bytes);
    } finally {
      await fh.close();
    }
    await fs.link(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** The body de-chunked and, where this Node can, decoded: at most DUMP_CAP bytes either way. */
async function body(rec: DumpRecord): Promise<Body> {
  let data: Buffer = Buffer.concat(rec.body);
  if (rec.chunked) data = dechunk(data);
  if (!rec.encoding) return { data, coding: '', truncated: rec.truncated };
  const decoded = await decode(rec.encoding, data, rec.truncated);
  // Not decodable here: the exact bytes, and what they were encoded with.
  if (!decoded) return { data, coding: rec.encoding, truncated: rec.truncated };
  return { data: decoded.data, coding: '', truncated: rec.truncated || decoded.capped };
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
