// Start-up A/B: spawn until the server-info file exists, two builds of the
// CLI alternating on the same machine in the same run, no proxy variable
// set. Usage: node dist/bench/startup-ab.js <before/cli.js> <after/cli.js> [runs]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [before, after, n] = process.argv.slice(2);
if (!before || !after) throw new Error('usage: startup-ab.js <before cli.js> <after cli.js> [runs]');
const runs = Number(n ?? 30);
const builds: Record<string, string> = { before, after };
const times: Record<string, number[]> = { before: [], after: [] };

async function once(cli: string): Promise<number> {
  const info = path.join(os.tmpdir(), `startup-ab-${process.pid}.json`);
  fs.rmSync(info, { force: true });
  const t0 = process.hrtime.bigint();
  const p = spawn(process.execPath, [cli, '--server-info', info, '--upstream-url', 'http://127.0.0.1:9/v1/responses'], { stdio: ['pipe', 'ignore', 'ignore'], env: { PATH: process.env.PATH ?? '' } });
  p.stdin.end('sk-startup-0123456789abcdefghij0123\n');
  for (let i = 0; i < 5000 && !fs.existsSync(info); i++) await new Promise((r) => setTimeout(r, 1));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  fs.rmSync(info, { force: true });
  return ms;
}

for (let i = 0; i < runs; i++) for (const k of i % 2 ? ['after', 'before'] : ['before', 'after']) times[k]!.push(await once(builds[k]!));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
for (const k of ['before', 'after']) console.log(`${k}: median ${median(times[k]!).toFixed(1)} ms, min ${Math.min(...times[k]!).toFixed(1)} ms over ${runs} runs`);
