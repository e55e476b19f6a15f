// A program run on a pseudo-terminal, as a user at a terminal runs it. Node
// has no pty; python3's pty module does the work (pty.fork: a new session
// whose controlling terminal is the pty, so Ctrl-C is a real SIGINT).
import { spawn, spawnSync } from 'node:child_process';

/**
 * Wait until the output so far matches a regular expression, or until a file
 * exists (the test's own signal that it is done with the running program);
 * send bytes; note whether the terminal echoes now.
 */
export type PtyStep = { wait: string } | { waitFile: string } | { send: string } | { echo: true };

export interface PtyRun {
  /** Everything the program wrote to the terminal, CRs included. */
  output: string;
  /** One entry per `{ echo: true }` step, then one after the program ended. */
  echo: boolean[];
  /** Exit code, or the name of the signal that ended it. */
  status: number | string;
}

// Each wait, and the final wait for the exit, gives up after 20 s and kills the program.
const SCRIPT = String.raw`
import fcntl, json, os, pty, re, select, signal, struct, sys, termios, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 24, spec['columns'], 0, 0))
    os.execve(spec['argv'][0], spec['argv'], spec['env'])
out = b''
def pump(until):
    global out
    deadline = time.time() + 20
    while time.time() < deadline:
        if until(): return True
        r, _, _ = select.select([fd], [], [], 0.02)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return until()
    return until()
echo = lambda: bool(termios.tcgetattr(fd)[3] & termios.ECHO)
result = {'echo': []}
try:
    for step in spec['steps']:
        if 'wait' in step:
            if not pump(lambda: re.search(step['wait'].encode(), out)):
                result['error'] = 'timed out waiting for ' + step['wait']
                break
        elif 'waitFile' in step:
            if not pump(lambda: os.path.exists(step['waitFile'])):
                result['error'] = 'timed out waiting for ' + step['waitFile']
                break
        elif 'send' in step:
            os.write(fd, step['send'].encode())
        elif 'echo' in step:
            result['echo'].append(echo())
    status = []
    def ended():
        if status: return True
        p, st = os.waitpid(pid, os.WNOHANG)
        if p: status.append(st)
        return bool(status)
    if not pump(ended):
        os.kill(pid, signal.SIGKILL)
        status.append(os.waitpid(pid, 0)[1])
    try:
        while select.select([fd], [], [], 0.05)[0]:
            out += os.read(fd, 65536)
    except OSError:
        pass
    result['echo'].append(echo())
    st = status[0]
    result['status'] = signal.Signals(os.WTERMSIG(st)).name if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
finally:
    result['output'] = out.decode('utf-8', 'replace')
    print(json.dumps(result))
`;

/** Why the pty tests cannot run here, or false. */
export function ptyMissing(): string | false {
  const r = spawnSync('python3', ['-c', 'import pty, termios, fcntl'], { stdio: 'ignore' });
  return r.status === 0 ? false : 'needs python3 with its pty module';
}

/** Runs argv (an absolute path first) on a pty of `columns` columns, through `steps`, until it exits. */
export function runInPty(argv: string[], steps: PtyStep[], opts: { columns?: number; env?: NodeJS.ProcessEnv } = {}): Promise<PtyRun> {
  const spec = { argv, steps, columns: opts.columns ?? 80, env: opts.env ?? { PATH: process.env.PATH ?? '' } };
  return new Promise((resolve, reject) => {
    const proc = spawn('python3', ['-c', SCRIPT, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', () => {
      try {
        const r = JSON.parse(out) as PtyRun & { error?: string };
        if (r.error) reject(new Error(`${r.error}; output so far: ${JSON.stringify(r.output)}`));
        else resolve(r);
      } catch {
        reject(new Error(`the pty driver failed: ${err}`));
      }
    });
  });
}
