import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { tempDir } from '../support/temp-dir';

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; when `stopWhen` appears on stdout, sends `signal`. Bounded by a 20 s guard. */
function run(args: string[], stopWhen?: RegExp, signal: NodeJS.Signals = 'SIGTERM', times = 1): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', REGISTER, MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stopWhen?.test(stdout)) {
        stopWhen = undefined;
        for (let i = 0; i < times; i++) child.kill(signal);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('rocketnest CLI', () => {
  test('broker opens a data directory, stops cleanly on SIGTERM and SIGINT, and reopens from its checkpoint', async () => {
    const t = tempDir();
    try {
      const dir = path.join(t.dir, 'data');
      // two signals at once: the second must not cut the clean close short
      const first = await run(
        ['broker', '--store-dir', dir, '--flush', 'sync'],
        /press Ctrl\+C/,
        'SIGTERM',
        2,
      );
      expect(first.stderr).toBe('');
      expect(first.stdout).toMatch(/recovered without checkpoint/);
      expect(first.stdout).toMatch(/SIGTERM received, closing\n/);
      expect(first.stdout).toMatch(/rocketnest broker: closed cleanly\n$/);
      expect(first.code).toBe(0);
      expect(existsSync(path.join(dir, 'checkpoint'))).toBe(true);
      expect(existsSync(path.join(dir, 'config'))).toBe(true);
      const second = await run(['broker', `--store-dir=${dir}`], /press Ctrl\+C/, 'SIGINT');
      expect(second.stdout).toMatch(/recovered from checkpoint: 0 records verified, 0 bytes truncated/);
      expect(second.code).toBe(0);
    } finally {
      t.cleanup();
    }
  });

  test('usage errors exit 2 with the usage text; --help exits 0', async () => {
    const bad = await run(['broker', '--flush', 'sometimes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--flush must be async or sync, not "sometimes"/);
    expect(bad.stderr).toMatch(/Usage: rocketnest broker/);
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const missing = await run(['broker', '--store-dir']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--store-dir needs a value/);
    const help = await run(['broker', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--segment-size <bytes>/);
  });

  test('a store error is reported with its code and exit 1', async () => {
    const bad = await run(['broker', '--store-dir', path.join(tempDir().dir, 'x'), '--segment-size', '100']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/INVALID_OPTION: store option segmentSizeBytes must be an integer/);
  });
});
