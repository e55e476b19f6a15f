// A child process for the key-secrecy tests. Mode 'cli' runs the real CLI in
// this process (it reads the key from stdin, hardens, listens); mode
// 'control' only reads the key with key.ts and then stringifies it on
// purpose, to prove the tests' searches can find a key that leaked.
// Over IPC it answers 'snapshot' (v8.writeHeapSnapshot) and 'ready'. At exit,
// after every earlier 'exit' listener (the proxy's wipe among them), it
// writes one byte to fd 4 and waits for one back, so the parent can read
// this process's memory at that moment.
// It never holds the key in a string, except the control's deliberate leak.
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';

const [mode, cli, ...args] = process.argv.slice(2);
// Run by a test runner that picks up every file under test/: nothing to do.
if (!process.send || (mode !== 'cli' && mode !== 'control')) process.exit(0);
let leak: string | undefined;

if (mode === 'cli') {
  process.argv = [process.argv[0]!, cli!, ...args];
  await import(pathToFileURL(cli!).href);
} else {
  const { readKeyLine } = (await import(new URL('../../src/secret/key.js', import.meta.url).href)) as typeof import('../../src/secret/key.js');
  // The bug the heap-snapshot test exists to catch.
  leak = readKeyLine(0).toString('latin1');
}

process.on('message', (m: { cmd: string; file?: string }) => {
  if (m.cmd === 'snapshot') process.send!({ file: v8.writeHeapSnapshot(m.file) });
  else if (m.cmd === 'ready') process.send!({ ready: true, leaked: leak !== undefined });
  else if (m.cmd === 'exit') process.exit(0);
});

// Death by a signal skips 'exit': pause in a listener that runs right after
// the CLI's own (which wipes, then re-raises the signal), then die by it.
// Listened to here, each signal reaches the pause whether the CLI handles it or not.
for (const signal of ['SIGTERM', 'SIGABRT', 'SIGTRAP', 'SIGSYS', 'SIGXCPU'] as const) {
  process.once(signal, () => {
    pause();
    setImmediate(() => process.kill(process.pid, signal));
  });
}
process.on('exit', pause);

function pause(): void {
  const one = Buffer.alloc(1);
  fs.writeSync(4, 'p');
  // Bounded: about 20 s of 10 ms waits if fd 4 is non-blocking.
  for (let i = 0; i < 2000; i++) {
    try {
      if (fs.readSync(4, one, 0, 1, null) > 0) return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}
