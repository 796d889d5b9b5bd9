import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const CORE = path.join(__dirname, '../../../core-broker');
/** Compiles TypeScript sources on `require` in a plain node process (as Jest does with swc). */
export const SWC_REGISTER = path.join(CORE, 'test/support/swc-register.js');
const CLI = path.join(CORE, 'src/cli/main.ts');

/** Runs `rocketnest <args>` from sources to its end: exit code and output. */
export function runCli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', SWC_REGISTER, CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A standalone `rocketnest broker` process on a temporary store, reached over TCP. */
export interface BrokerProcess {
  /** `host:port` it listens on. */
  address: string;
  /** Connection options for RocketServer/RocketClient/RocketModule. */
  brokers: Record<string, string>;
  /** SIGTERM, then waits for the exit (SIGKILL after `timeoutMs`); removes the store. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** Starts the CLI from sources with `--port 0 --topics …`; resolves once it prints where it listens. */
export async function spawnBroker(
  topics: string[],
  startTimeoutMs = 20_000,
  extraArgs: string[] = [],
): Promise<BrokerProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rocketnest-nest-'));
  const child = spawn(
    process.execPath,
    [
      '-r',
      SWC_REGISTER,
      CLI,
      'broker',
      '--store-dir',
      dir,
      '--port',
      '0',
      '--topics',
      topics.join(','),
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let address: string;
  try {
    address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`broker did not start within ${startTimeoutMs} ms:\n${output}`)),
        startTimeoutMs,
      );
      const onData = (): void => {
        const match = /listening on (\S+:\d+)/.exec(output);
        if (!match) return;
        clearTimeout(timer);
        resolve(match[1]!);
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`broker exited with ${code} before listening:\n${output}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    address,
    brokers: { 'broker-a': address },
    stop: (timeoutMs = 10_000) => stopChild(child, dir, timeoutMs),
  };
}

function stopChild(child: ChildProcess, dir: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const done = (code: number | null): void => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      resolve(code);
    };
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode);
    child.once('exit', (code) => done(code));
    child.kill('SIGTERM');
  });
}
