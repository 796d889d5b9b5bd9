import { eventsNamed, type ProbeEvent, type ProbeRun, runJavaProbe } from './official-clients';

/**
 * The RocketMQ 5 scenarios of the differential suite, run with the official Java client against a
 * gRPC endpoint. Each returns an outcome with nothing run-specific in it (no ids, no times), so
 * the outcome against Apache RocketMQ and against RocketNest can be compared with `toEqual`.
 */
export interface Target {
  name: string;
  endpoint: string;
  logDir: string;
  /** Creates a consumer group that consumes in FIFO order (Apache: `updateSubGroup -o true`). */
  createFifoGroup(group: string): Promise<void>;
}

function ok(run: ProbeRun, what: string): ProbeRun {
  if (run.code !== 0) {
    throw new Error(`${what} failed (exit ${run.code}): ${JSON.stringify(run.events)}\n${run.stderr}`);
  }
  return run;
}

const seqOf = (e: ProbeEvent): number => Number(e.seq);

/** Normal messages with a tag: every one received once, attempt 1, tag and keys intact. */
export async function normalSendAndReceive(t: Target, topic: string, group: string) {
  const sent = ok(
    await runJavaProbe('send', { endpoint: t.endpoint, topic, count: 5, tag: 'created' }, t.logDir),
    'send',
  );
  const received = ok(
    await runJavaProbe(
      'simple',
      { endpoint: t.endpoint, topic, group, count: 5, filter: 'created', 'timeout-ms': 60_000 },
      t.logDir,
    ),
    'simple',
  );
  return {
    sent: eventsNamed(sent, 'sent').length,
    ids: new Set(eventsNamed(sent, 'sent').map((e) => e.id)).size,
    received: eventsNamed(received, 'received')
      .map((e) => ({ seq: seqOf(e), tag: e.tag, keys: e.keys, attempt: e.attempt, body: e.body }))
      .sort((a, b) => a.seq - b.seq),
    complete: eventsNamed(received, 'complete').length,
  };
}

/** FIFO: 12 messages in 3 message groups; each group's messages arrive in send order. */
export async function fifoOrder(t: Target, topic: string, group: string) {
  await t.createFifoGroup(group);
  ok(
    await runJavaProbe('send', { endpoint: t.endpoint, topic, count: 12, 'message-groups': 3 }, t.logDir),
    'send',
  );
  const received = ok(
    await runJavaProbe(
      'simple',
      { endpoint: t.endpoint, topic, group, count: 12, 'timeout-ms': 90_000 },
      t.logDir,
    ),
    'simple',
  );
  const perGroup: Record<string, number[]> = {};
  for (const e of eventsNamed(received, 'received')) (perGroup[String(e.group)] ??= []).push(seqOf(e));
  return { perGroup, complete: eventsNamed(received, 'complete').length };
}

/** A message whose invisible time is changed comes back, with its delivery attempt raised to 2. */
export async function changeInvisibleRedelivers(t: Target, topic: string, group: string) {
  ok(await runJavaProbe('send', { endpoint: t.endpoint, topic, count: 2 }, t.logDir), 'send');
  const received = ok(
    await runJavaProbe(
      'simple',
      {
        endpoint: t.endpoint,
        topic,
        group,
        count: 2,
        mode: 'change',
        'change-ms': 10_000,
        'timeout-ms': 90_000,
      },
      t.logDir,
    ),
    'simple',
  );
  return {
    attempts: eventsNamed(received, 'received')
      .map((e) => ({ seq: seqOf(e), attempt: e.attempt }))
      .sort((a, b) => a.seq - b.seq || Number(a.attempt) - Number(b.attempt)),
    changed: eventsNamed(received, 'changed').length,
    complete: eventsNamed(received, 'complete').length,
  };
}

/** A transactional half message left open: the checker answers UNKNOWN, then COMMIT; then it is delivered. */
export async function transactionCheckedUnknownThenCommit(t: Target, topic: string, group: string) {
  const tx = ok(
    await runJavaProbe(
      'transaction',
      { endpoint: t.endpoint, topic, checks: 'UNKNOWN,COMMIT', 'timeout-ms': 90_000 },
      t.logDir,
    ),
    'transaction',
  );
  const received = ok(
    await runJavaProbe(
      'simple',
      { endpoint: t.endpoint, topic, group, count: 1, 'timeout-ms': 60_000 },
      t.logDir,
    ),
    'simple',
  );
  return {
    answers: eventsNamed(tx, 'check').map((e) => e.answer),
    resolved: eventsNamed(tx, 'resolved').length,
    delivered: eventsNamed(received, 'received').map((e) => ({ seq: seqOf(e), attempt: e.attempt })),
  };
}

/** PushConsumer with a tag filter: a message failed on its first attempt is retried (attempt 2); other tags never arrive. */
export async function pushRetriesFailures(t: Target, topic: string, group: string) {
  ok(await runJavaProbe('send', { endpoint: t.endpoint, topic, count: 2, tag: 'skip' }, t.logDir), 'send');
  ok(await runJavaProbe('send', { endpoint: t.endpoint, topic, count: 3, tag: 'keep' }, t.logDir), 'send');
  const pushed = ok(
    await runJavaProbe(
      'push',
      {
        endpoint: t.endpoint,
        topic,
        group,
        count: 3,
        filter: 'keep',
        'fail-first': 1,
        'timeout-ms': 90_000,
      },
      t.logDir,
    ),
    'push',
  );
  return {
    tags: [...new Set(eventsNamed(pushed, 'received').map((e) => e.tag))],
    attempts: eventsNamed(pushed, 'received')
      .map((e) => ({ seq: seqOf(e), attempt: e.attempt }))
      .sort((a, b) => a.seq - b.seq || Number(a.attempt) - Number(b.attempt)),
    failed: eventsNamed(pushed, 'failed').length,
    complete: eventsNamed(pushed, 'complete').length,
  };
}
