// A local Apache RocketMQ 5 for the demo (`pnpm demo:apache` and its test): name server, broker
// and gRPC proxy started from Maven Central's jars by the repository's tools/apache-rocketmq.sh,
// with the demo's topics created with the message types Apache checks on every send.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ORDER_NOTES_TOPIC, ORDER_TIMEOUTS_TOPIC, ORDERS_TOPIC, PAYMENTS_TOPIC } from './contracts';

/** The start script, from `src/` or `dist/` of apps/demo-orders. */
export const APACHE_SCRIPT = path.resolve(__dirname, '../../../tools/apache-rocketmq.sh');
/** Bound on a start: Maven's first fetch (about 150 MB) and two JVMs on a loaded machine. */
export const APACHE_START_TIMEOUT_MS = 300_000;
/** Bound on a stop (the script sends SIGKILL after 20 s). */
export const APACHE_STOP_TIMEOUT_MS = 60_000;
/** Topic of `RocketClient.send()` replies (nest-transport's `DEFAULT_REPLY_TOPIC`). */
const REPLY_TOPIC = 'RocketNestReply';

/**
 * The demo's topics as `tools/apache-rocketmq.sh` takes them (`topic:queues:type`). Apache checks a
 * message's type against its topic's: `orders` and `order-notes` carry message groups (FIFO), the
 * order timeouts are delayed (DELAY), the payment outcomes transactional (TRANSACTION). No group
 * needs to be orderly: the demo's listeners are concurrent and idempotent.
 */
export const APACHE_DEMO_TOPICS: readonly string[] = [
  `${ORDERS_TOPIC}:4:fifo`,
  `${ORDER_TIMEOUTS_TOPIC}:4:delay`,
  `${PAYMENTS_TOPIC}:4:transaction`,
  `${ORDER_NOTES_TOPIC}:4:fifo`,
  `${REPLY_TOPIC}:4`,
];

export interface ApacheCluster {
  workDir: string;
  /** The proxy's gRPC address (`ROCKETMQ_PROXY`). */
  proxy: string;
  namesrv: string;
  /** Stops every JVM the script started (idempotent). */
  stop(): Promise<void>;
}

function script(args: string[], timeoutMs: number): Promise<{ code: number; output: string; last: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [APACHE_SCRIPT, ...args],
      { timeout: timeoutMs, maxBuffer: 64 << 20 },
      (error, stdout: string, stderr: string) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}`, last: stdout.trim().split('\n').pop() ?? '' });
      },
    );
  });
}

/**
 * Starts Apache RocketMQ in `workDir` with the demo's topics (a cluster left running there by an
 * earlier run is stopped first). Rejects with the script's output when it fails.
 */
export async function startApacheCluster(workDir: string): Promise<ApacheCluster> {
  if (!fs.existsSync(APACHE_SCRIPT)) {
    throw new Error(`${APACHE_SCRIPT} not found: run the demo on Apache from the RocketNest repository`);
  }
  fs.mkdirSync(workDir, { recursive: true });
  await script(['stop', workDir], APACHE_STOP_TIMEOUT_MS);
  const started = await script(['start', workDir, ...APACHE_DEMO_TOPICS], APACHE_START_TIMEOUT_MS);
  const match = /^namesrv=(\S+) proxy=(\S+)$/.exec(started.last);
  const stop = async (): Promise<void> => {
    await script(['stop', workDir], APACHE_STOP_TIMEOUT_MS);
  };
  if (started.code !== 0 || !match) {
    await stop();
    throw new Error(`tools/apache-rocketmq.sh start failed (exit ${started.code}):\n${started.output}`);
  }
  let stopping: Promise<void> | undefined;
  return {
    workDir,
    namesrv: match[1]!,
    proxy: match[2]!,
    stop: () => (stopping ??= stop()),
  };
}
