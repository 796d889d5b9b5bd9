import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ApacheDriver } from '../../src/driver/apache/apache-driver';
import type { DriverMessage, MessagingDriver } from '../../src/driver/contract';
import { openDriver } from '../../src/connection/open-connection';
import { CliProcess } from '../cluster/process-harness';
import {
  apacheAdmin,
  type ApacheRocketMq,
  startApacheRocketMq,
  stopApacheRocketMq,
} from '../rocketmq5/official-clients';

/**
 * The four targets of the driver contract's conformance suite (docs/drivers.md), each a real
 * part: an embedded broker; a standalone `rocketnest broker` started from the CLI, over TCP;
 * the same process's RocketMQ 5 gRPC endpoint (`--grpc-port`) through the Apache driver; and a
 * real Apache RocketMQ 5.3 (name server + proxy in local mode, tools/apache-rocketmq.sh) through
 * the Apache driver.
 */
export type TargetName = 'embedded' | 'standalone' | 'rocketnest-grpc' | 'apache';
export const TARGET_NAMES: readonly TargetName[] = ['embedded', 'standalone', 'rocketnest-grpc', 'apache'];

export interface TopicSpec {
  name: string;
  queues: number;
  /** Apache's `message.type`; RocketNest topics are FIFO or normal (normal takes delayed and transactional). */
  type: 'normal' | 'fifo' | 'delay' | 'transaction';
}

export interface Target {
  name: TargetName;
  open(): Promise<MessagingDriver>;
  /** Makes `group` consume in order (Apache: `updateSubGroup -o true`; RocketNest: nothing to do). */
  orderlyGroup(group: string): Promise<void>;
  /** The RocketMQ 5 gRPC targets (`rocketnest-grpc`, `apache`): the endpoint their Apache driver uses. */
  endpoints?: string;
  /** Apache only: the cluster's work dir, JVM pids and script, for fault tests. */
  apache?: ApacheRocketMq;
}

/** Starts what the targets need; `stop()` stops all of it. */
export async function startTargets(
  topics: readonly TopicSpec[],
  names: readonly TargetName[] = TARGET_NAMES,
): Promise<{ targets: Map<TargetName, Target>; stop(): Promise<void> }> {
  const workDir = mkdtempSync(path.join(tmpdir(), 'driver-conformance-'));
  const targets = new Map<TargetName, Target>();
  const clis: CliProcess[] = [];
  let apache: ApacheRocketMq | undefined;
  const stop = async (): Promise<void> => {
    for (const cli of clis) cli.kill('SIGTERM');
    await Promise.all(clis.map((cli) => cli.exited));
    if (apache) await stopApacheRocketMq(apache.workDir);
    rmSync(workDir, { recursive: true, force: true });
  };
  try {
    const rocketnestTopics = topics.map((t) => ({
      topic: t.name,
      queueCount: t.queues,
      ...(t.type === 'fifo' ? { fifo: true } : {}),
    }));
    if (names.includes('embedded')) {
      targets.set('embedded', {
        name: 'embedded',
        open: () =>
          openDriver({
            embedded: {
              topics: rocketnestTopics,
              broker: { transactionTimeoutMs: 1000, transactionCheckIntervalMs: 1000 },
            },
          }),
        orderlyGroup: async () => undefined,
      });
    }
    // one broker process per target, so one target's messages never reach another's groups
    const startBroker = async (name: string): Promise<CliProcess> => {
      const cli = new CliProcess(`rocketnest broker (${name})`, [
        'broker',
        '--store-dir',
        path.join(workDir, name),
        '--port',
        '0',
        '--grpc-port',
        '0',
        '--transaction-timeout-ms',
        '1000',
        '--transaction-check-interval-ms',
        '1000',
        '--topics',
        topics.map((t) => `${t.name}:${t.queues}${t.type === 'fifo' ? ':fifo' : ''}`).join(','),
      ]);
      clis.push(cli);
      await cli.waitFor(/gRPC \(RocketMQ 5 MessagingService\) on [\d.]+:(\d+)/, 60_000);
      return cli;
    };
    if (names.includes('standalone')) {
      const tcp = await (await startBroker('standalone')).address();
      targets.set('standalone', {
        name: 'standalone',
        open: () => openDriver({ brokers: [tcp] }),
        orderlyGroup: async () => undefined,
      });
    }
    if (names.includes('rocketnest-grpc')) {
      const cli = await startBroker('rocketnest-grpc');
      const [, grpcPort] = (await cli.waitFor(/gRPC \(RocketMQ 5 MessagingService\) on [\d.]+:(\d+)/))!;
      targets.set('rocketnest-grpc', {
        name: 'rocketnest-grpc',
        endpoints: `127.0.0.1:${grpcPort}`,
        open: async () => new ApacheDriver({ endpoints: `127.0.0.1:${grpcPort}` }),
        orderlyGroup: async () => undefined,
      });
    }
    if (names.includes('apache')) {
      apache = await startApacheRocketMq(
        path.join(workDir, 'apache'),
        topics.map((t) => `${t.name}:${t.queues}${t.type === 'normal' ? '' : `:${t.type}`}`),
      );
      const cluster = apache;
      targets.set('apache', {
        name: 'apache',
        endpoints: cluster.proxy,
        apache: cluster,
        open: async () => new ApacheDriver({ endpoints: cluster.proxy }),
        orderlyGroup: (group) => apacheOrderlyGroup(cluster.workDir, group),
      });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { targets, stop };
}

/** `updateSubGroup -o true`, retried: mqadmin's calls time out after ~2 s on a loaded machine. */
export async function apacheOrderlyGroup(workDir: string, group: string): Promise<void> {
  let out = '';
  for (let attempt = 1; attempt <= 5 && !/success/.test(out); attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, attempt * 1000));
    out = await apacheAdmin(workDir, ['updateSubGroup', '-c', 'DefaultCluster', '-g', group, '-o', 'true']);
  }
  if (!/success/.test(out)) throw new Error(`updateSubGroup ${group} failed:\n${out}`);
}

/** Waits until `condition()` holds, polling; throws naming `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A handler that records what it was given. */
export function recorder(): { messages: DriverMessage[]; handler: (m: DriverMessage) => void } {
  const messages: DriverMessage[] = [];
  return { messages, handler: (m) => void messages.push(m) };
}
