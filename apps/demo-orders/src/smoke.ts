// `pnpm demo:smoke`: starts the built demo (dist/main.js) as a child process on a free loopback
// port and a temporary data directory, with a short order timeout, runs the smoke checks over
// HTTP, stops it with SIGTERM and checks it exits cleanly. Exits non-zero on any mismatch.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSmokeChecks } from './smoke-checks';

/** The order timeout of the smoke run. */
const SMOKE_ORDER_TIMEOUT_MS = 2_000;
/** The external events token of the smoke run. */
const SMOKE_EXTERNAL_TOKEN = 'smoke-external-token';
/** Bound on the demo's start (it prints its URL). */
const START_TIMEOUT_MS = 30_000;
/** Bound on the demo's exit after SIGTERM. */
const STOP_TIMEOUT_MS = 15_000;
/** Bound on the whole run. */
const RUN_TIMEOUT_MS = 90_000;

function waitForUrl(child: ChildProcess, output: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the demo printed no URL within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(buffered);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited during start (code ${code}, signal ${signal}):\n${output.join('')}`));
    });
  });
}

function waitForExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the demo did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`)),
      STOP_TIMEOUT_MS,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-demo-smoke-'));
  const output: string[] = [];
  const child = spawn(process.execPath, [path.join(__dirname, 'main.js')], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DEMO_DATA_DIR: dataDir,
      ORDER_TIMEOUT_MS: String(SMOKE_ORDER_TIMEOUT_MS),
      PAYMENT_FAILURE_RATE: '0',
      ROCKETNEST_NAMESRV: '',
      EXTERNAL_EVENTS_TOKEN: SMOKE_EXTERNAL_TOKEN,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const overall = setTimeout(() => {
    console.error(`smoke: no result within ${RUN_TIMEOUT_MS} ms`);
    child.kill('SIGKILL');
    process.exit(1);
  }, RUN_TIMEOUT_MS);
  overall.unref();
  try {
    const url = await waitForUrl(child, output);
    console.log(`smoke: demo at ${url}, data in ${dataDir}, order timeout ${SMOKE_ORDER_TIMEOUT_MS} ms`);
    await runSmokeChecks(url, {
      orderTimeoutMs: SMOKE_ORDER_TIMEOUT_MS,
      externalEventsToken: SMOKE_EXTERNAL_TOKEN,
      log: (line) => console.log(`  ok  ${line}`),
    });
    child.kill('SIGTERM');
    const code = await waitForExit(child);
    if (code !== 0) throw new Error(`the demo exited with code ${code} after SIGTERM`);
    const shutdown = output.join('').split('SIGTERM: stopping')[1] ?? '';
    if (/\bERROR\b|Error:/.test(shutdown)) throw new Error('the demo logged errors while stopping');
    console.log('  ok  the demo stopped cleanly on SIGTERM');
    console.log('smoke: all paths passed');
  } catch (error) {
    console.error(`smoke: FAILED: ${error instanceof Error ? error.message : String(error)}`);
    console.error('--- demo output ---\n' + output.join(''));
    if (child.exitCode === null) child.kill('SIGKILL');
    process.exitCode = 1;
  } finally {
    clearTimeout(overall);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

void main();
