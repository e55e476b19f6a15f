// Files this process writes for others to read: --server-info, removed at
// exit so a later run never finds a stale one (codex-action#133), and
// --usage-file, kept for the workflow steps that run after. Issue 17: run as root, `--server-info /dev/null`
// renamed a temp file over /dev/null and unlinked it at exit. So nothing this
// process did not create is ever renamed over, emptied or unlinked:
// - a character device, a FIFO, or a link to one (`/dev/stdout` →
//   /proc/self/fd/1) is written through, as the original writes it, and left
//   in place;
// - a regular file, or nothing, is replaced atomically by a file of ours;
//   where the folder cannot take a file of ours but the regular file is
//   writable (codex-action's unprivileged-user mode pre-creates it 0666 in a
//   folder the proxy's user cannot write), it is written in place and left;
// - at exit, a file of ours is removed only while the path still names it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeDirs } from './dirs.js';

/** Each file this process created, by absolute path, with the identity exit checks before unlinking. */
const owned = new Map<string, { dev: number; ino: number }>();
/** Paths written before: only the first write to a FIFO waits for its reader. */
const tried = new Set<string>();

// The kernel's own bound on links followed in one lookup (path_resolution(7)).
const MAX_LINKS = 40;
// 10 ms steps: a FIFO's reader may open its end up to 10 s after the first
// write is due, and a full FIFO or terminal up to 1 s to drain; both only
// for a path's first write, made at start-up: later writes (the usage
// file's) run on the relay's thread and never sleep.
const STEP_MS = 10;
const READER_STEPS = 1000;
const DRAIN_STEPS = 100;
// This process's (or a thread's) open files: /dev/stdout and /dev/fd/N lead here.
const FD_DIR = /^\/proc\/\d+(\/task\/\d+)?\/fd$/;

type Plan = { how: 'replace' } | { how: 'through'; at: string; fdLink: boolean; fifo: boolean };
const REPLACE: Plan = { how: 'replace' };

function fail(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Writes `text` to `file` (see the rules above) and remembers what this
 * process created, to remove at exit unless `keep`. Throws an ErrnoException on failure: EISDIR for a
 * directory, ENXIO for a socket or a FIFO nobody reads, ENOTSUP for a block
 * device, or what the system call gave.
 */
export function writeOwned(file: string, text: string, keep = false): void {
  const target = path.resolve(file);
  const bytes = Buffer.from(text);
  const first = !tried.has(target);
  tried.add(target);
  const plan = planFor(target);
  if (plan.how === 'through') {
    writeThrough(plan, bytes, first);
    // Not ours, whatever was remembered for this path before.
    owned.delete(target);
  } else {
    let made: { dev: number; ino: number } | null;
    try {
      made = replace(target, bytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw err;
      writeInPlace(target, bytes, err as NodeJS.ErrnoException);
      made = null;
    }
    if (keep || !made) owned.delete(target);
    else owned.set(target, made);
  }
}

/** On every exit that runs JS: removes each file this process created, only if the path still names that very file. Never throws. */
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

/**
 * Follows the links at `target` one by one, as the kernel would, but never
 * a link planted in a sticky world-writable folder by another user (the rule
 * of fs.protected_symlinks, fs/namei.c may_follow_link): a planted link, a
 * dangling one, or one that leads to a regular file is replaced, never
 * written through. Only a link into /proc/PID/fd, which names a file some
 * process holds open (stdout redirected to a file), is written through to a
 * regular file, as the original does.
 */
function planFor(target: string): Plan {
  let p = target;
  for (let hop = 0; hop <= MAX_LINKS; hop++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      // Nothing there (or not reachable): ours takes the name, and making it reports any real error.
      return REPLACE;
    }
    if (!st.isSymbolicLink()) return byKind(st, p, false);
    const dir = fs.realpathSync.native(path.dirname(p));
    const folder = fs.statSync(dir);
    // A link another user planted, or one in a folder others may write
    // without the sticky bit (any of them can swap it), is never followed.
    const planted = st.uid !== process.geteuid?.() && st.uid !== folder.uid;
    const open = (folder.mode & 0o022) !== 0 && (folder.mode & 0o1000) === 0;
    if (planted || open) return REPLACE;
    const at = path.join(dir, path.basename(p));
    if (FD_DIR.test(dir)) return byKind(fs.statSync(at), at, true);
    p = path.resolve(dir, fs.readlinkSync(at));
  }
  throw fail('ELOOP', `${target}: too many levels of symbolic links`);
}

function byKind(st: fs.Stats, at: string, fdLink: boolean): Plan {
  if (st.isCharacterDevice() || st.isFIFO()) return { how: 'through', at, fdLink, fifo: st.isFIFO() };
  if (st.isFile()) return fdLink ? { how: 'through', at, fdLink, fifo: false } : REPLACE;
  if (st.isDirectory()) throw fail('EISDIR', `${at} is a directory`);
  if (st.isSocket()) throw fail('ENXIO', `${at} is a socket`);
  throw fail('ENOTSUP', `${at} is a block device`);
}

/**
 * Opens without O_CREAT or O_TRUNC, so nothing is made or emptied, and
 * O_APPEND, so a file behind /proc/PID/fd/N keeps what it holds. O_NONBLOCK
 * because a FIFO with no reader would block open(2) for ever: instead it
 * fails with ENXIO, and the first write waits up to READER_STEPS for a
 * reader (a starter may open its end just after starting the proxy); later
 * writes fail at once, as a reader that left is not coming back. O_NOCTTY so
 * a terminal never becomes this process's controlling one. O_NOFOLLOW on a
 * path that was not a link, so a link swapped in since is not followed.
 */
function writeThrough(plan: Extract<Plan, { how: 'through' }>, bytes: Buffer, first: boolean): void {
  const { O_WRONLY, O_APPEND, O_NONBLOCK, O_NOCTTY, O_NOFOLLOW } = fs.constants;
  const flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | (plan.fdLink ? 0 : O_NOFOLLOW);
  let fd = -1;
  for (let step = 0; fd < 0; step++) {
    try {
      fd = fs.openSync(plan.at, flags);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || !plan.fifo || !first || step >= READER_STEPS) throw err;
      sleep(STEP_MS);
    }
  }
  try {
    // What was opened must still be the kind that was planned for (a race in a shared folder).
    const st = fs.fstatSync(fd);
    if (!(st.isCharacterDevice() || st.isFIFO() || (plan.fdLink && st.isFile()))) throw fail('EAGAIN', `${plan.at} changed while it was opened`);
    for (let off = 0, step = 0; off < bytes.length; ) {
      try {
        off += fs.writeSync(fd, bytes, off);
      } catch (err) {
        // Only a path's first write (at start-up) may wait: later ones run on the relay's thread.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || !first || step++ >= DRAIN_STEPS) throw err;
        sleep(STEP_MS);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The folder refused a file of ours: write an existing regular file (never a
 * link, never anything else) in place. The bytes go in first and the length
 * is cut after, so a poller never sees it empty. Not ours: never removed.
 * Throws `refused` when there is no such file or it cannot be opened.
 */
function writeInPlace(target: string, bytes: Buffer, refused: NodeJS.ErrnoException): void {
  const before = fs.lstatSync(target, { throwIfNoEntry: false });
  if (!before?.isFile()) throw refused;
  const { O_WRONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(target, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  } catch {
    throw refused;
  }
  try {
    // Still the file that was looked at, and still a regular one.
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.dev !== before.dev || st.ino !== before.ino) throw fail('EAGAIN', `${target} changed while it was opened`);
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off, off);
    fs.ftruncateSync(fd, bytes.length);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a fresh temp file in the same folder, then renames it over
 * `target`: a poller never sees half a line. The temp name is random and
 * opened with O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink planted at a guessed
 * name can never redirect the write (issue 8: a root proxy overwrote a
 * root-owned file through `.<name>.<pid>.tmp`). rename(2) replaces a symlink
 * at `target` itself rather than following it. Returns the new file's identity.
 */
function replace(target: string, bytes: Buffer): { dev: number; ino: number } {
  const dir = path.dirname(target);
  // 0755 whatever the umask lets through: a folder others could write would let them plant links.
  makeDirs(dir, 0o755);
  const tmp = path.join(dir, `.${path.basename(target)}.${crypto.randomBytes(12).toString('hex')}.tmp`);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  let open = true;
  try {
    fs.writeSync(fd, bytes);
    // Whatever the umask: the workflow's later steps may run as another user, and neither file holds a secret.
    fs.fchmodSync(fd, 0o644);
    const { dev, ino } = fs.fstatSync(fd);
    open = false;
    fs.closeSync(fd);
    fs.renameSync(tmp, target);
    return { dev, ino };
  } catch (err) {
    if (open) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
