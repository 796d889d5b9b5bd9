import { spawn } from 'node:child_process';
import * as path from 'node:path';

const CHILD = path.join(__dirname, 'support/hybrid-app.child.ts');
const REGISTER = path.join(__dirname, 'support/child-register.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
}

/** Runs the hybrid app in its own process; `onReady` may signal it. Fails if it is still running after `timeoutMs`. */
function run(mode: 'close' | 'signal', timeoutMs = 20_000): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, ['-r', REGISTER, CHILD, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the app process did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (mode === 'signal' && output.includes('ready') && !child.killed) child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: Date.now() - started });
    });
  });
}

describe('shutdown of a hybrid app leaves nothing running', () => {
  it('app.close(): consumers, producers, the embedded broker and HTTP stop, and the process exits by itself', async () => {
    const result = await run('close');
    expect(result.output).toContain('received 1');
    expect(result.output).toMatch(/server disconnected[\s\S]*shutdown hook close[\s\S]*closed/);
    expect(result).toMatchObject({ code: 0, signal: null });
  }, 30_000);

  it('enableShutdownHooks(): SIGTERM closes the server and runs the shutdown hooks', async () => {
    const result = await run('signal');
    expect(result.output).toContain('received 1');
    expect(result.output).toMatch(/ready[\s\S]*server disconnected[\s\S]*shutdown hook SIGTERM/);
    // Nest re-raises the signal after closing the app
    expect(result.signal === 'SIGTERM' || result.code === 0).toBe(true);
  }, 30_000);
});
