import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const README = path.join(__dirname, '../README.md');
const REGISTER = path.join(__dirname, 'support/child-register.js');

/** The first ```ts block of the README: the app a reader pastes into src/main.ts. */
function firstExample(): string {
  const match = /```ts\n([\s\S]*?)```/.exec(readFileSync(README, 'utf8'));
  if (!match) throw new Error('README has no ts example');
  return match[1]!;
}

test('the README example runs as written: GET /orders publishes, the listener consumes, SIGTERM stops it', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rocketnest-readme-'));
  const file = path.join(dir, 'main.ts');
  writeFileSync(file, firstExample());
  const child = spawn(process.execPath, ['-r', REGISTER, file], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const until = async (pattern: RegExp, what: string): Promise<RegExpExecArray> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const match = pattern.exec(output);
      if (match) return match;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${what}:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    const [, url] = await until(/listening on (http:\/\/\S+)/, 'listening line');
    const response = await fetch(`${url!.replace('[::1]', '127.0.0.1')}/orders`);
    const msgId = await response.text();
    expect(response.status).toBe(200);
    await until(new RegExp(`order 42 created \\(message ${msgId}\\)`), 'consumed order');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const { code, signal } = await exited;
    clearTimeout(timer);
    expect(signal === 'SIGTERM' || code === 0).toBe(true);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);
