// Issue 17 item 1: --server-info never renames over, empties or unlinks what
// the proxy did not create. Every device, FIFO and link is made inside a temp
// folder; nothing here names a real system path.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CLI, KEY, runCli, tmpDir, waitFor } from './support/harness.js';
import { removeOwned, writeOwned } from '../src/cli/owned-file.js';

const UP = ['--upstream-url', 'http://127.0.0.1:9/v1/responses'];
const env = { PATH: process.env.PATH ?? '' };
const isRoot = process.geteuid?.() === 0;

interface Running {
  proc: ChildProcess;
  port: number;
  exited: Promise<number | string>;
}

/** The CLI with `--server-info info`, started once its listening line is out (the file may not be one a test can poll). */
async function launch(info: string, stdout: 'ignore' | number = 'ignore'): Promise<Running> {
  const proc = spawn(process.execPath, [CLI, '--server-info', info, ...UP], { stdio: ['pipe', stdout, 'pipe'], env });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let dead: number | string | undefined;
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve((dead = code ?? signal ?? -1))));
  proc.stdin!.end(`${KEY}\n`);
  try {
    const port = await waitFor('the listening line', () => {
      if (dead !== undefined) throw new Error(`proxy exited (${dead}): ${err}`);
      const m = / listening on 127\.0\.0\.1:(\d+)\n/.exec(err);
      return m ? Number(m[1]) : undefined;
    });
    return { proc, port, exited };
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
}

async function stop(r: Running): Promise<void> {
  r.proc.kill('SIGTERM');
  assert.equal(await r.exited, 'SIGTERM');
}

const line = (r: Running): string => `{"port":${r.port},"pid":${r.proc.pid}}\n`;

/** What a non-blocking FIFO reader can read now: 0 when nothing was written (EOF with no writer, or EAGAIN). */
function pendingBytes(readFd: number): number {
  try {
    return fs.readSync(readFd, Buffer.alloc(64));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'EAGAIN');
    return 0;
  }
}

function mkfifo(file: string): void {
  const r = spawnSync('mkfifo', [file]);
  assert.equal(r.status, 0, String(r.stderr));
}

/** `cat FIFO`: a reader as a shell would start one; resolves with all it read once the writers are gone. */
function catFifo(fifo: string): { proc: ChildProcess; text: Promise<string> } {
  const proc = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
  return {
    proc,
    text: new Promise((resolve) =>
      proc.on('exit', () => {
        clearTimeout(timer);
        resolve(out);
      }),
    ),
  };
}

// mknod needs CAP_MKNOD (root, outside most user namespaces).
function charDevice(dir: string): string | null {
  const dev = path.join(dir, 'null');
  return spawnSync('mknod', [dev, 'c', '1', '3']).status === 0 ? dev : null;
}
const mknodSkip = ((): string | false => {
  const dir = tmpDir();
  return charDevice(dir) ? false : 'mknod c 1 3 is not allowed here (needs root with CAP_MKNOD)';
})();

describe('written through, left in place', () => {
  test('a character device node, and a link to one', { skip: mknodSkip }, async () => {
    const dir = tmpDir();
    const dev = charDevice(dir)!;
    const link = path.join(dir, 'link');
    fs.symlinkSync(dev, link);
    for (const info of [dev, link]) {
      await stop(await launch(info));
    }
    assert.ok(fs.lstatSync(dev).isCharacterDevice(), 'still a device');
    assert.equal(fs.readlinkSync(link), dev, 'the link is untouched');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['link', 'null'], 'no temp file left');
  });

  test('a link to /proc/self/fd/1 carries the line to stdout, a file or a pipe, and stays', async () => {
    const dir = tmpDir();
    const link = path.join(dir, 'stdout');
    fs.symlinkSync('/proc/self/fd/1', link);
    // stdout redirected to a file (`> out.txt`): appended, nothing before it lost.
    const out = path.join(dir, 'out.txt');
    fs.writeFileSync(out, 'before\n');
    const fd = fs.openSync(out, 'a');
    const toFile = await launch(link, fd);
    fs.closeSync(fd);
    assert.equal(fs.readFileSync(out, 'utf8'), `before\n${line(toFile)}`);
    await stop(toFile);
    // stdout a pipe (`| reader`); the proxy holds the only write end.
    const fifo = path.join(dir, 'pipe');
    mkfifo(fifo);
    const reader = catFifo(fifo);
    const pipeFd = fs.openSync(fifo, fs.constants.O_RDWR);
    const toPipe = await launch(link, pipeFd);
    fs.closeSync(pipeFd);
    await stop(toPipe);
    assert.equal(await reader.text, line(toPipe));
    assert.equal(fs.readlinkSync(link), '/proc/self/fd/1', 'the link is untouched');
    assert.ok(fs.lstatSync(fifo).isFIFO());
  });

  test("a FIFO's reader gets the line, and the FIFO stays", async () => {
    const dir = tmpDir();
    const fifo = path.join(dir, 'info');
    mkfifo(fifo);
    const reader = catFifo(fifo);
    const r = await launch(fifo);
    // The proxy closed its end after writing: cat has read everything and ended.
    assert.equal(await reader.text, line(r));
    await stop(r);
    assert.ok(fs.lstatSync(fifo).isFIFO());
    assert.deepEqual(fs.readdirSync(dir), ['info']);
  });

  test('a FIFO whose reader comes a moment later: the first write waits for it', async () => {
    const dir = tmpDir();
    const fifo = path.join(dir, 'info');
    mkfifo(fifo);
    const proc = spawn(process.execPath, [CLI, '--server-info', fifo, ...UP], { stdio: ['pipe', 'ignore', 'ignore'], env });
    const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    proc.stdin.end(`${KEY}\n`);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const text = await catFifo(fifo).text;
      assert.match(text, new RegExp(`^\\{"port":\\d+,"pid":${proc.pid}\\}\\n$`));
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 'SIGTERM');
    assert.ok(fs.lstatSync(fifo).isFIFO());
  });
});

describe('replaced by a file of ours, removed only while it is ours', () => {
  test('an existing regular file is replaced, and removed at exit', async () => {
    const dir = tmpDir();
    const info = path.join(dir, 'info.json');
    fs.writeFileSync(info, 'old\n');
    const r = await launch(info);
    assert.equal(fs.readFileSync(info, 'utf8'), line(r));
    await stop(r);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  test('a file put there by someone else after the write is left at exit', async () => {
    const dir = tmpDir();
    const info = path.join(dir, 'info.json');
    const r = await launch(info);
    fs.writeFileSync(path.join(dir, 'theirs'), 'theirs\n');
    fs.renameSync(path.join(dir, 'theirs'), info);
    await stop(r);
    assert.equal(fs.readFileSync(info, 'utf8'), 'theirs\n');
  });

  test('a link planted in a sticky world-writable folder by another user is replaced, never followed', { skip: isRoot ? false : 'lchown to another user needs root' }, async () => {
    const dir = tmpDir();
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    // A reader, so a write through the link would have somewhere to go.
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const info = path.join(shared, 'info.json');
    fs.symlinkSync(fifo, info);
    fs.lchownSync(info, 65534, 65534);
    try {
      const r = await launch(info);
      assert.ok(fs.lstatSync(info).isFile());
      assert.equal(fs.readFileSync(info, 'utf8'), line(r));
      await stop(r);
      assert.equal(pendingBytes(readFd), 0, 'nothing was written through the planted link');
      assert.deepEqual(fs.readdirSync(shared), [], 'ours removed at exit');
      assert.ok(fs.lstatSync(fifo).isFIFO());
    } finally {
      fs.closeSync(readFd);
    }
  });
});

describe('refused: one line, exit 1', () => {
  const cases: [string, (dir: string) => Promise<string> | string, RegExp][] = [
    ['a directory', (dir) => dir, /\(EISDIR\)$/],
    [
      'a socket',
      async (dir) => {
        const sock = path.join(dir, 'sock');
        const server = net.createServer();
        await new Promise<void>((r) => server.listen(sock, r));
        // Closing a listener unlinks its path: keep the inode, lose the listener.
        fs.linkSync(sock, path.join(dir, 'sock2'));
        await new Promise((r) => server.close(r));
        return path.join(dir, 'sock2');
      },
      /\(ENXIO\)$/,
    ],
  ];
  for (const [name, make, code] of cases) {
    test(name, async () => {
      const dir = tmpDir();
      const info = await make(dir);
      const before = fs.readdirSync(dir).sort();
      const r = await runCli(['--server-info', info, ...UP], `${KEY}\n`);
      assert.equal(r.code, 1, r.stderr);
      // The error alone: no "listening" line comes before it.
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      const last = lines[0]!;
      assert.match(last, new RegExp(`^codex-responses-api-proxy: cannot write --server-info ${info.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} `));
      assert.match(last, code);
      assert.deepEqual(fs.readdirSync(dir).sort(), before, 'nothing made or removed');
    });
  }
});

describe("codex-action's unprivileged-user mode", () => {
  // openai/codex-action (src/main.ts) makes the codex user's ~/.codex 0755,
  // `sudo touch`es <run id>.json there and chmods it 666, then starts the
  // proxy as the runner user, who cannot create a file in that folder.
  const setprivMissing = spawnSync('setpriv', ['--version']).status === 0 ? false : 'setpriv (util-linux) is not installed';
  test('a pre-made 0666 file in a folder the proxy cannot write is written in place, and left at exit', { skip: isRoot ? setprivMissing : 'needs root to run the proxy as two other users' }, async () => {
    const dir = tmpDir();
    fs.chmodSync(dir, 0o755);
    const home = path.join(dir, 'codexhome');
    fs.mkdirSync(home);
    fs.chownSync(home, 65534, 65534);
    fs.chmodSync(home, 0o755);
    const info = path.join(home, '4242.json');
    fs.writeFileSync(info, '');
    fs.chmodSync(info, 0o666);
    const proc = spawn('setpriv', ['--reuid=65533', '--regid=65533', '--clear-groups', process.execPath, CLI, '--http-shutdown', '--server-info', info, ...UP], { stdio: ['pipe', 'ignore', 'pipe'], env });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    proc.stdin!.end(`${KEY}\n`);
    try {
      const text = await waitFor('the server-info line', () => {
        const t = fs.readFileSync(info, 'utf8');
        return t.endsWith('\n') ? t : undefined;
      });
      const { port, pid } = JSON.parse(text) as { port: number; pid: number };
      assert.equal(text, `{"port":${port},"pid":${pid}}\n`, err);
      const bye = await new Promise<string>((resolve, reject) => {
        const c = net.connect(port, '127.0.0.1', () => c.end(`GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
        let got = '';
        c.on('data', (d: Buffer) => (got += d.toString('latin1'))).on('close', () => resolve(got)).on('error', reject);
      });
      assert.match(bye, /^HTTP\/1\.1 200 /);
      assert.equal(await exited, 0, err);
      assert.deepEqual(fs.readdirSync(home), ['4242.json'], 'not ours: left in place, and no temp file');
      assert.equal(fs.readFileSync(info, 'utf8'), text);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});

describe('writeOwned and removeOwned in this process', () => {
  test('each write replaces the file atomically; removeOwned removes the last one', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'usage.json');
    writeOwned(file, 'one\n');
    const first = fs.statSync(file).ino;
    writeOwned(file, 'two\n');
    assert.equal(fs.readFileSync(file, 'utf8'), 'two\n');
    assert.notEqual(fs.statSync(file).ino, first, 'a new file, renamed into place');
    assert.deepEqual(fs.readdirSync(dir), ['usage.json']);
    removeOwned();
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  test('a FIFO with no reader, after its first write: ENXIO at once, never a hang', () => {
    const dir = tmpDir();
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    writeOwned(fifo, 'first\n');
    const got = Buffer.alloc(16);
    assert.equal(got.subarray(0, fs.readSync(readFd, got)).toString(), 'first\n');
    fs.closeSync(readFd);
    assert.throws(() => writeOwned(fifo, 'second\n'), { code: 'ENXIO' });
    removeOwned();
    assert.ok(fs.lstatSync(fifo).isFIFO());
  });

  test('a file of ours replaced by a FIFO is written through, and no longer removed', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'usage.json');
    writeOwned(file, 'ours\n');
    fs.rmSync(file);
    mkfifo(file);
    const readFd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      writeOwned(file, 'through\n');
      removeOwned();
      assert.ok(fs.lstatSync(file).isFIFO());
    } finally {
      fs.closeSync(readFd);
    }
  });

  test('a link in a folder others may write (no sticky bit) is replaced, never followed', () => {
    const dir = tmpDir();
    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const file = path.join(open, 'usage.json');
    fs.symlinkSync(fifo, file);
    try {
      writeOwned(file, 'ours\n', true);
      assert.ok(fs.lstatSync(file).isFile());
      assert.equal(fs.readFileSync(file, 'utf8'), 'ours\n');
      assert.equal(pendingBytes(readFd), 0, 'nothing went through the link');
    } finally {
      fs.closeSync(readFd);
    }
  });

  test('a chain of more than 40 links: ELOOP', () => {
    const dir = tmpDir();
    fs.symlinkSync('a', path.join(dir, 'b'));
    fs.symlinkSync('b', path.join(dir, 'a'));
    assert.throws(() => writeOwned(path.join(dir, 'a'), 'x\n'), { code: 'ELOOP' });
  });
});
