import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  apacheAdmin,
  APACHE_START_TIMEOUT_MS,
  type ApacheRocketMq,
  buildJavaProbe,
  startApacheRocketMq,
  stopApacheRocketMq,
} from './official-clients';
import {
  changeInvisibleRedelivers,
  fifoOrder,
  normalSendAndReceive,
  pushRetriesFailures,
  type Target,
  transactionCheckedUnknownThenCommit,
} from './scenarios';

/**
 * The differential suite's reference side: the RocketMQ 5 scenarios run with the official Java
 * client against a real Apache RocketMQ 5 (name server + broker + proxy from Maven Central jars,
 * started by tools/apache-rocketmq.sh). The outcomes asserted here are Apache's behaviour; the
 * same scenarios run against RocketNest's gRPC endpoint must give the same outcomes.
 */
let apache: ApacheRocketMq;
let target: Target;
const workDir = mkdtempSync(path.join(tmpdir(), 'apache-rocketmq-'));

beforeAll(async () => {
  await buildJavaProbe();
  apache = await startApacheRocketMq(workDir, [
    'DiffNormal:4',
    'DiffFifo:4:fifo',
    'DiffInvisible:4',
    'DiffTx:4:transaction',
    'DiffPush:4',
  ]);
  target = {
    name: 'apache',
    endpoint: apache.proxy,
    logDir: path.join(workDir, 'client-logs'),
    createFifoGroup: async (group) => {
      const out = await apacheAdmin(workDir, [
        'updateSubGroup',
        '-c',
        'DefaultCluster',
        '-g',
        group,
        '-o',
        'true',
      ]);
      if (!/success/.test(out)) throw new Error(`updateSubGroup ${group} failed:\n${out}`);
    },
  };
}, APACHE_START_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await stopApacheRocketMq(workDir);
  rmSync(workDir, { recursive: true, force: true });
}, 90_000);

test('normal messages: each received once, first attempt, tag and keys intact', async () => {
  const outcome = await normalSendAndReceive(target, 'DiffNormal', 'GroupNormal');
  expect(outcome.sent).toBe(5);
  expect(outcome.ids).toBe(5);
  expect(outcome.complete).toBe(1);
  expect(outcome.received).toEqual(
    [0, 1, 2, 3, 4].map((seq) => ({
      seq,
      tag: 'created',
      keys: `k-${seq}`,
      attempt: 1,
      body: `m-${seq}`,
    })),
  );
}, 180_000);

test('FIFO: each message group arrives in send order', async () => {
  const outcome = await fifoOrder(target, 'DiffFifo', 'GroupFifo');
  expect(outcome.complete).toBe(1);
  expect(outcome.perGroup).toEqual({
    g0: [0, 3, 6, 9],
    g1: [1, 4, 7, 10],
    g2: [2, 5, 8, 11],
  });
}, 180_000);

test('change invisible duration: the message comes back with delivery attempt 2', async () => {
  const outcome = await changeInvisibleRedelivers(target, 'DiffInvisible', 'GroupInvisible');
  expect(outcome.changed).toBe(2);
  expect(outcome.complete).toBe(1);
  expect(outcome.attempts).toEqual([
    { seq: 0, attempt: 1 },
    { seq: 0, attempt: 2 },
    { seq: 1, attempt: 1 },
    { seq: 1, attempt: 2 },
  ]);
}, 180_000);

test('transaction: checked UNKNOWN then COMMIT, then delivered once', async () => {
  const outcome = await transactionCheckedUnknownThenCommit(target, 'DiffTx', 'GroupTx');
  expect(outcome.answers).toEqual(['UNKNOWN', 'COMMIT']);
  expect(outcome.resolved).toBe(1);
  expect(outcome.delivered).toEqual([{ seq: 0, attempt: 1 }]);
}, 240_000);

test('push consumer: tag filter, a failed first attempt is retried as attempt 2', async () => {
  const outcome = await pushRetriesFailures(target, 'DiffPush', 'GroupPush');
  expect(outcome.tags).toEqual(['keep']);
  expect(outcome.failed).toBe(3);
  expect(outcome.complete).toBe(1);
  expect(outcome.attempts).toEqual(
    [0, 1, 2].flatMap((seq) => [
      { seq, attempt: 1 },
      { seq, attempt: 2 },
    ]),
  );
}, 240_000);
