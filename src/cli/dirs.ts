// Directory creation that always ends, for the paths a user names on the command line.
import fs from 'node:fs';
import path from 'node:path';

// Deeper than any real path; bounds the walk below whatever the file system does.
const MAX_DEPTH = 256;

/**
 * Creates `dir` and its missing parents, one mkdir per level. Node's own
 * recursive mkdirSync loops forever under /proc (issue 8: /proc/nope/x.json
 * spun at 100% CPU on Node 20, 22 and 24); this walk makes at most one
 * attempt per path component and throws the first error it meets. Used for
 * --server-info's folder and --dump-dir.
 */
export function makeDirs(dir: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let d = dir; missing.length <= MAX_DEPTH; d = path.dirname(d)) {
    try {
      if (!fs.statSync(d).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(d) === d) throw err;
      missing.push(d);
    }
  }
  if (missing.length > MAX_DEPTH) throw Object.assign(new Error('path too deep'), { code: 'ENAMETOOLONG' });
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, { mode });
    } catch (err) {
      // Made by someone else meanwhile: fine if it is a directory now.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw err;
    }
  }
}
