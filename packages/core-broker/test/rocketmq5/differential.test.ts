import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CliProcess } from '../cluster/process-harness';
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
  delayedRecall,
  pushFailuresGoToDeadLetters,
  pushLongHandlerRenewed,
  pushRetriesFailures,
  sqlFilterPush,
  sqlFilterSimple,
  type Target,
  transactionCheckedUnknownThenCommit,
} from './scenarios';

/**
 * The differential suite: the RocketMQ 5 scenarios run with the official Java client
 * (tools/rocketmq-java-client) against a real Apache RocketMQ 5 (name server + broker + proxy from
 * Maven Central jars, started by tools/apache-rocketmq.sh) and against `rocketnest broker
 * --grpc-port` started from the CLI. Each scenario's outcome must be the same on both (a
 * difference is a RocketNest bug unless docs/rocketmq5-clients.md lists it as deliberate), and is
 * also checked against what RocketMQ documents.
 */
const TOPICS = [
  'DiffNormal:4',
  'DiffFifo:4:fifo',
  'DiffInvisible:4',
  'DiffTx:4:transaction',
  'DiffPush:4',
  'DiffSqlSimple:4',
  'DiffSqlPush:4',
  'DiffDlq:4',
  'DiffRenew:4',
  'DiffRecall:4:delay',
];
/** Redeliveries before the dead-letter queue in the DLQ scenario (RocketNest: for every group). */
const MAX_RECONSUME_TIMES = 1;
let apache: ApacheRocketMq;
let rocketnest: CliProcess;
const targets: Record<'apache' | 'rocketnest', Target> = {} as never;
const workDir = mkdtempSync(path.join(tmpdir(), 'rocketmq5-diff-'));

beforeAll(async () => {
  await buildJavaProbe();
  rocketnest = new CliProcess('rocketnest broker', [
    'broker',
    '--store-dir',
    path.join(workDir, 'rocketnest'),
    '--port',
    '0',
    '--grpc-port',
    '0',
    '--topics',
    // RocketNest's topics have no TRANSACTION or DELAY type: those messages go to normal topics.
    TOPICS.map((t) => t.replace(/:(transaction|delay)$/, '')).join(','),
    // Apache sets this per group (updateSubGroup -r); RocketNest for the broker. No scenario here
    // needs more than one retry, so the other groups behave the same with it.
    '--max-reconsume-times',
    String(MAX_RECONSUME_TIMES),
  ]);
  const [, port] = (await rocketnest.waitFor(
    /gRPC \(RocketMQ 5 MessagingService\) on [\d.]+:(\d+)/,
    60_000,
  ))!;
  targets.rocketnest = {
    name: 'rocketnest',
    endpoint: `127.0.0.1:${port}`,
    logDir: path.join(workDir, 'client-logs-rocketnest'),
    // A RocketNest group consumes a FIFO topic's message groups in order without a group flag.
    createFifoGroup: async () => undefined,
    limitRetries: async (_group, times) => {
      if (times !== MAX_RECONSUME_TIMES)
        throw new Error(`rocketnest was started with ${MAX_RECONSUME_TIMES} retries`);
    },
  };
  apache = await startApacheRocketMq(path.join(workDir, 'apache'), TOPICS);
  targets.apache = {
    name: 'apache',
    endpoint: apache.proxy,
    logDir: path.join(workDir, 'client-logs-apache'),
    createFifoGroup: (group) => updateApacheGroup(group, ['-o', 'true']),
    limitRetries: (group, times) => updateApacheGroup(group, ['-r', String(times)]),
  };
}, APACHE_START_TIMEOUT_MS + 120_000);

/** Creates or updates a subscription group on Apache (`mqadmin updateSubGroup`). */
async function updateApacheGroup(group: string, settings: string[]): Promise<void> {
  // mqadmin's calls time out after ~2 s: a loaded machine can miss that, so try a few times.
  let out = '';
  for (let attempt = 1; attempt <= 5 && !/success/.test(out); attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, attempt * 1000));
    out = await apacheAdmin(apache.workDir, [
      'updateSubGroup',
      '-c',
      'DefaultCluster',
      '-g',
      group,
      ...settings,
    ]);
  }
  if (!/success/.test(out)) throw new Error(`updateSubGroup ${group} failed:\n${out}`);
}

afterAll(async () => {
  rocketnest?.kill('SIGTERM');
  await rocketnest?.exited;
  await stopApacheRocketMq(path.join(workDir, 'apache'));
  rmSync(workDir, { recursive: true, force: true });
}, 90_000);

/** Runs `scenario` against both targets at once; expects equal outcomes and returns Apache's. */
async function differential<T>(scenario: (t: Target) => Promise<T>): Promise<T> {
  const [onApache, onRocketNest] = await Promise.all([
    scenario(targets.apache),
    scenario(targets.rocketnest),
  ]);
  expect(onRocketNest).toEqual(onApache);
  return onApache;
}

test('normal messages: each received once, first attempt, tag and keys intact', async () => {
  const outcome = await differential((t) => normalSendAndReceive(t, 'DiffNormal', 'GroupNormal'));
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
  const outcome = await differential((t) => fifoOrder(t, 'DiffFifo', 'GroupFifo'));
  expect(outcome.complete).toBe(1);
  expect(outcome.perGroup).toEqual({
    g0: [0, 3, 6, 9],
    g1: [1, 4, 7, 10],
    g2: [2, 5, 8, 11],
  });
}, 180_000);

test('change invisible duration: the message comes back with delivery attempt 2', async () => {
  const outcome = await differential((t) => changeInvisibleRedelivers(t, 'DiffInvisible', 'GroupInvisible'));
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
  const outcome = await differential((t) => transactionCheckedUnknownThenCommit(t, 'DiffTx', 'GroupTx'));
  expect(outcome.answers).toEqual(['UNKNOWN', 'COMMIT']);
  expect(outcome.resolved).toBe(1);
  expect(outcome.delivered).toEqual([{ seq: 0, attempt: 1 }]);
}, 240_000);

test('push consumer: tag filter, a failed first attempt is retried as attempt 2', async () => {
  const outcome = await differential((t) => pushRetriesFailures(t, 'DiffPush', 'GroupPush'));
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

test('SQL92 filter, SimpleConsumer: only the matching messages arrive', async () => {
  const outcome = await differential((t) => sqlFilterSimple(t, 'DiffSqlSimple', 'GroupSqlSimple'));
  expect(outcome.complete).toBe(1);
  expect(outcome.later).toBe(0);
  expect(outcome.received).toEqual([0, 1, 2].map((seq) => ({ seq, region: 'eu', attempt: 1 })));
}, 240_000);

test('SQL92 filter, PushConsumer: only the matching messages arrive', async () => {
  const outcome = await differential((t) => sqlFilterPush(t, 'DiffSqlPush', 'GroupSqlPush'));
  expect(outcome.complete).toBe(1);
  expect(outcome.received).toEqual(
    [0, 1, 2, 6, 7].map((seq) => ({ seq, region: seq < 3 ? 'eu' : 'apac', attempt: 1 })),
  );
}, 240_000);

test('push consumer: failed on every attempt, a message goes to %DLQ%<group> after its retries', async () => {
  const outcome = await differential((t) => pushFailuresGoToDeadLetters(t, 'DiffDlq', 'GroupDlq'));
  expect(outcome.failed).toBe(4);
  expect(outcome.attempts).toEqual(
    [0, 1].flatMap((seq) => [
      { seq, attempt: 1 },
      { seq, attempt: 2 },
    ]),
  );
  expect(outcome.deadComplete).toBe(1);
  expect(outcome.deadLetters).toEqual(
    [0, 1].map((seq) => ({ seq, topic: '%DLQ%GroupDlq', keys: `k-${seq}`, body: `m-${seq}`, sameId: true })),
  );
}, 360_000);

test('push consumer: a handler longer than the invisible time — RocketNest renews it (a deliberate difference)', async () => {
  // 75 s: past the 60 s invisible time of a push receive (the proxy's defaultInvisibleTimeMills).
  // RocketNest renews the invisible time while the consumer is connected (grpc-renewal.ts), so the
  // message is consumed once. Apache 5.3.3 (proxy in local mode) with Java client 5.0.8 was seen to
  // deliver it again meanwhile, as attempt 2; docs/rocketmq5-clients.md lists the difference.
  const [onApache, onRocketNest] = await Promise.all([
    pushLongHandlerRenewed(targets.apache, 'DiffRenew', 'GroupRenew', 75_000),
    pushLongHandlerRenewed(targets.rocketnest, 'DiffRenew', 'GroupRenew', 75_000),
  ]);
  expect(onRocketNest).toEqual({
    received: [{ seq: 0, attempt: 1 }],
    consumed: [{ attempt: 1 }],
    complete: 1,
  });
  expect(onApache.complete).toBe(1);
  expect(onApache.received[0]).toEqual({ seq: 0, attempt: 1 });
}, 360_000);

test('RecallMessage: a recalled delayed message is never delivered, the others are when due', async () => {
  const outcome = await differential((t) => delayedRecall(t, 'DiffRecall', 'GroupRecall'));
  // recalling again before its time is accepted (Apache only checks the handle and the time)
  expect(outcome.recalls).toEqual(
    [1, 2].map((n) => ({ event: 'recalled', seq: 0, n, class: undefined, code: undefined })),
  );
  expect(outcome.received).toEqual([
    { seq: 1, attempt: 1 },
    { seq: 2, attempt: 1 },
  ]);
}, 300_000);
