import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { APACHE_START_TIMEOUT_MS } from '../rocketmq5/official-clients';
import { waitUntil } from './driver-targets';

const SCRIPT = path.join(__dirname, '../../../../tools/apache-rocketmq.sh');

function pidOf(apacheDir: string, name: 'proxy' | 'namesrv'): number {
  return Number(readFileSync(path.join(apacheDir, `${name}.pid`), 'utf8').trim());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILLs both Apache JVMs (proxy with its broker, and the name server) and waits until they are gone. */
export async function killApache(apacheDir: string): Promise<void> {
  const pids = [pidOf(apacheDir, 'proxy'), pidOf(apacheDir, 'namesrv')];
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await waitUntil(() => pids.every((pid) => !alive(pid)), 'the Apache JVMs to die', 30_000);
}

/** Starts Apache again in its directory (same store, same topics) with the proxy on `grpcPort`. */
export function restartApache(apacheDir: string, topics: readonly string[], grpcPort: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(
      'bash',
      [SCRIPT, 'start', apacheDir, ...topics],
      { env: { ...process.env, APACHE_ROCKETMQ_GRPC_PORT: grpcPort }, timeout: APACHE_START_TIMEOUT_MS },
      (error, stdout, stderr) =>
        error ? reject(new Error(`restart failed: ${error.message}\n${stdout}\n${stderr}`)) : resolve(),
    ),
  );
}
