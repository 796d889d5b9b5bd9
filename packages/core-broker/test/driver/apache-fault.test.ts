import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ApacheDriver } from '../../src/driver/apache/apache-driver';
import type { DriverProducer } from '../../src/driver/contract';
import {
  APACHE_START_TIMEOUT_MS,
  type ApacheRocketMq,
  startApacheRocketMq,
  stopApacheRocketMq,
} from '../rocketmq5/official-clients';
import { killApache, restartApache } from './apache-restart';
import { apacheOrderlyGroup, waitUntil } from './driver-targets';

/**
 * Faults on a real Apache RocketMQ 5 through the Apache driver: while a producer sends and two
 * subscriptions (one concurrent, one FIFO) consume, both Apache JVMs (name server, and proxy with
 * its broker) are killed with SIGKILL and started again in the same directory, on the same
 * proxy port. The driver must reconnect by itself; every send it acknowledged is delivered (at
 * least once); a message received but never acked comes back after its invisible time; and each
 * FIFO message group is still handled in send order.
 */
const workDir = mkdtempSync(path.join(tmpdir(), 'apache-fault-'));
const apacheDir = path.join(workDir, 'apache');
const TOPICS = ['FaultNormal:4', 'FaultFifo:4:fifo'];
let apache: ApacheRocketMq;

beforeAll(async () => {
  apache = await startApacheRocketMq(apacheDir, TOPICS);
  await apacheOrderlyGroup(apacheDir, 'FaultFifoGroup');
}, APACHE_START_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await stopApacheRocketMq(apacheDir);
  rmSync(workDir, { recursive: true, force: true });
}, 90_000);

test('kill -9 of the Apache JVMs mid-stream: the driver reconnects, nothing acknowledged is lost, FIFO order holds', async () => {
  const driver = new ApacheDriver({ endpoints: apache.proxy, invisibleDurationMs: 10_000 });
  const received = new Map<string, number>();
  const heldAttempts: number[] = [];
  let releaseHeld!: () => void;
  const held = new Promise<void>((resolve) => (releaseHeld = resolve));
  const fifoFirstSeen: Record<string, number[]> = {};
  const fifoHandled: Record<string, number[]> = {};
  const errors: string[] = [];

  const normal = await driver.subscribe({
    group: 'FaultGroup',
    topic: 'FaultNormal',
    onError: (error, stage) =>
      void (errors.length < 1000 && errors.push(`${stage}: ${(error as Error).message}`)),
    handler: async (m) => {
      const body = m.body.toString();
      received.set(body, (received.get(body) ?? 0) + 1);
      if (body === 'held') {
        heldAttempts.push(m.deliveryAttempt);
        // the first delivery is never acked: it must come back after its invisible time
        if (m.deliveryAttempt === 1) await held;
      }
    },
  });
  const fifo = await driver.subscribe({
    group: 'FaultFifoGroup',
    topic: 'FaultFifo',
    fifo: true,
    concurrency: 3,
    handler: (m) => {
      const [group, step] = m.body.toString().split(':');
      const steps = (fifoHandled[group!] ??= []);
      steps.push(Number(step));
      const first = (fifoFirstSeen[group!] ??= []);
      if (!first.includes(Number(step))) first.push(Number(step));
    },
  });
  const producer = await driver.createProducer({
    group: 'FaultProducer',
    topics: ['FaultNormal', 'FaultFifo'],
  });
  await producer.send({ topic: 'FaultNormal', body: 'held' });
  await waitUntil(() => heldAttempts.length >= 1, 'the held message to be received', 60_000);

  // a producer sending until told to stop: what it acknowledged must all arrive
  const acknowledged: string[] = [];
  const fifoAcknowledged: Record<string, number[]> = { a: [], b: [], c: [] };
  let failedSends = 0;
  let stopSending = false;
  const sending = (async (p: DriverProducer) => {
    for (let i = 0; !stopSending && i < 100_000; i++) {
      const body = `n-${i}`;
      const group = ['a', 'b', 'c'][i % 3]!;
      try {
        await p.send({ topic: 'FaultNormal', body });
        acknowledged.push(body);
        await p.send({ topic: 'FaultFifo', body: `${group}:${i}`, messageGroup: group });
        fifoAcknowledged[group]!.push(i);
      } catch {
        failedSends++;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })(producer);

  await waitUntil(() => acknowledged.length >= 20, '20 acknowledged sends before the crash', 60_000);
  const grpcPort = apache.proxy.split(':')[1]!;
  await killApache(apacheDir);
  const beforeRestart = acknowledged.length;
  await restartApache(apacheDir, TOPICS, grpcPort);
  await waitUntil(
    () => acknowledged.length >= beforeRestart + 20,
    '20 acknowledged sends after the restart (the driver reconnected)',
    180_000,
  );
  stopSending = true;
  await sending;

  // every acknowledged send arrives, and the held message comes back (attempt ≥ 2)
  await waitUntil(
    () => acknowledged.every((body) => received.has(body)),
    `all ${acknowledged.length} acknowledged messages (missing: ${acknowledged.filter((b) => !received.has(b)).length})`,
    180_000,
  );
  await waitUntil(() => heldAttempts.some((a) => a >= 2), 'the unacked message to come back', 120_000);
  await waitUntil(
    () =>
      Object.entries(fifoAcknowledged).every(([g, steps]) => steps.every((s) => fifoHandled[g]?.includes(s))),
    'every acknowledged FIFO message',
    180_000,
  );
  for (const [group, steps] of Object.entries(fifoFirstSeen)) {
    // at least once: a message may come again, but never one before an earlier step of its group
    expect({ group, steps }).toEqual({ group, steps: [...steps].sort((x, y) => x - y) });
  }
  // the crash did hit the stream: sends failed while Apache was down
  expect(failedSends).toBeGreaterThan(0);
  releaseHeld();
  await Promise.all([normal.close(), fifo.close()]);
  await producer.close();
  await driver.close();
}, 600_000);
