// A key typed at a terminal is not echoed (issue 17: the original echoes it
// into the scrollback). Node has no termios call of its own, and its one way
// in, tty.ReadStream#setRawMode, also turns off ICANON and ISIG: line
// editing would be gone and Ctrl-C would arrive as a byte for key.ts to
// interpret. Instead `stty -echo` clears ECHO alone, so the kernel still
// edits the line and Ctrl-C is still a SIGINT. If that SIGINT comes while the
// read blocks (no JS can run then), Node's own handler restores the
// terminal modes it saw at start-up before dying by the signal (ResetStdio
// in src/node.cc), so the terminal gets its echo back on that path too.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

// Absolute, not PATH: the program shares the terminal the key is typed on.
const STTY = ['/bin/stty', '/usr/bin/stty'];
// stty only changes a setting, but a process in the background of its
// terminal stops on SIGTTOU when it tries: never wait on it for ever.
const STTY_TIMEOUT_MS = 5000;

/** Runs stty on fd 0; its stdout, or null if it could not run or failed. */
function stty(path: string, args: string[]): string | null {
  const r = spawnSync(path, args, { stdio: [0, 'pipe', 'ignore'], encoding: 'latin1', timeout: STTY_TIMEOUT_MS });
  return r.status === 0 ? r.stdout : null;
}

/**
 * Calls `read` with echo off on the terminal at fd 0, and puts every
 * terminal setting back as it was (`stty -g`, then `stty SAVED`) as soon as
 * it returns or throws. When echo cannot be turned off, `warn` says so and
 * the key is read anyway, echoed as by the original.
 */
export function withoutEcho<T>(read: () => T, warn: (line: string) => void): T {
  const path = STTY.find((p) => fs.existsSync(p));
  const saved = path ? stty(path, ['-g'])?.trim() : undefined;
  if (!path || !saved || stty(path, ['-echo']) === null) {
    warn('warning: cannot turn off the terminal echo (no working stty); what you type will show');
    return read();
  }
  try {
    return read();
  } finally {
    stty(path, [saved]);
  }
}
