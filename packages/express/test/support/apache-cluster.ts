import { execFile } from 'node:child_process';
import * as path from 'node:path';

/**
 * A real Apache RocketMQ 5 for the Express tests, started and stopped by tools/apache-rocketmq.sh
 * (name server + proxy in local mode from Maven Central jars). The core-broker and Nest tests
 * have the same helper; packages use each other only by name, so this one is the Express tests' own.
 */
const SCRIPT = path.join(__dirname, '../../../../tools/apache-rocketmq.sh');
/** Maven's first fetch on a fresh machine plus the JVMs' start on 2 cores. */
export const APACHE_START_TIMEOUT_MS = 300_000;

function run(args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [SCRIPT, ...args],
      { timeout: timeoutMs, maxBuffer: 64 << 20 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          out: stdout + stderr,
        }),
    );
  });
}

/** Starts the cluster in `workDir` with `topics` (`name[:queues[:fifo|delay|transaction]]`); its proxy's address. */
export async function startApache(workDir: string, topics: string[]): Promise<{ proxy: string }> {
  const { code, out } = await run(['start', workDir, ...topics], APACHE_START_TIMEOUT_MS);
  const match = /^namesrv=\S+ proxy=(\S+)$/m.exec(out); // the script's last stdout line; Maven's first fetch writes to stderr after it
  if (code !== 0 || !match) {
    await stopApache(workDir);
    throw new Error(`apache-rocketmq.sh start failed (exit ${code}):\n${out}`);
  }
  return { proxy: match[1]! };
}

export async function stopApache(workDir: string): Promise<void> {
  await run(['stop', workDir], 60_000);
}
