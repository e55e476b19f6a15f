// Files this process writes for others to read: --server-info, removed on
// every exit that runs JS so a later run never finds a stale one
// (codex-action#133), and --usage-file, kept for the steps that run after.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeDirs } from './dirs.js';

/** The files this process wrote and must remove at exit, by inode, so exit removes only those. */
const owned = new Map<string, { dev: number; ino: number }>();

/**
 * Writes the text to a fresh temp file in the same folder, then renames it
 * over `file`: a reader never sees half of it. The temp name is random and
 * opened with O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink planted at a guessed
 * name can never redirect the write (issue 8: a root proxy overwrote a
 * root-owned file through `.<name>.<pid>.tmp`). rename(2) replaces a
 * symlink at `file` itself rather than following it. Mode 0644: neither
 * file holds a secret. `keep` leaves the file in place at exit.
 */
export function writeOwned(file: string, text: string, keep = false): void {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  makeDirs(dir);
  const tmp = path.join(dir, `.${path.basename(target)}.${crypto.randomBytes(12).toString('hex')}.tmp`);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  let open = true;
  try {
    fs.writeSync(fd, text);
    // Whatever the umask: the workflow's other steps may run as another user.
    fs.fchmodSync(fd, 0o644);
    const { dev, ino } = fs.fstatSync(fd);
    open = false;
    fs.closeSync(fd);
    fs.renameSync(tmp, target);
    if (!keep) owned.set(target, { dev, ino });
  } catch (err) {
    if (open) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Removes each file to remove that is still the one this process wrote; never throws. */
export function removeOwned(): void {
  for (const [file, { dev, ino }] of owned) {
    try {
      const st = fs.lstatSync(file);
      if (st.dev === dev && st.ino === ino) fs.unlinkSync(file);
    } catch {
      // Already gone, or its folder is: nothing left to remove.
    }
  }
  owned.clear();
}
