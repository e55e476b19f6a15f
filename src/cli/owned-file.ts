// The --server-info file: `{"port":<u16>,"pid":<u32>}` and a newline,
// written once listening and removed on every exit that runs JS, so a later
// run never finds a stale one (codex-action#133).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeDirs } from './dirs.js';

/** The file this process wrote, identified by inode, so exit removes only that. */
let written: { file: string; dev: number; ino: number } | null = null;

/**
 * Writes the line to a fresh temp file in the same folder, then renames it
 * over `file`: a poller never sees half a line. The temp name is random and
 * opened with O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink planted at a guessed
 * name can never redirect the write (issue 8: a root proxy overwrote a
 * root-owned file through `.<name>.<pid>.tmp`). rename(2) replaces a
 * symlink at `file` itself rather than following it.
 */
export function writeServerInfo(file: string, port: number): void {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  makeDirs(dir);
  const tmp = path.join(dir, `.${path.basename(target)}.${crypto.randomBytes(12).toString('hex')}.tmp`);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  let open = true;
  try {
    fs.writeSync(fd, `${JSON.stringify({ port, pid: process.pid })}\n`);
    const { dev, ino } = fs.fstatSync(fd);
    open = false;
    fs.closeSync(fd);
    fs.renameSync(tmp, target);
    written = { file: target, dev, ino };
  } catch (err) {
    if (open) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Removes the file if it is still the one this process wrote; never throws. */
export function removeServerInfo(): void {
  if (!written) return;
  const { file, dev, ino } = written;
  written = null;
  try {
    const st = fs.lstatSync(file);
    if (st.dev === dev && st.ino === ino) fs.unlinkSync(file);
  } catch {
    // Already gone, or its folder is: nothing left to remove.
  }
}
