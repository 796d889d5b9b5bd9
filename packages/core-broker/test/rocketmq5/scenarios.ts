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
  /**
   * Gives `group` at most `times` redeliveries before its dead-letter queue (Apache: `updateSubGroup
   * -r`; RocketNest bounds every group with `--max-reconsume-times`, so there it checks the flag).
   */
  limitRetries(group: string, times: number): Promise<void>;
}

function ok(run: ProbeRun, what: string): ProbeRun {
  if (run.code !== 0) {
    throw new Error(`${what} failed (exit ${run.code}): ${JSON.stringify(run.events)}\n${run.stderr}`);
  }
  return run;
}

const seqOf = (e: ProbeEvent): number => Number(e.seq);

/** Sends `count` messages numbered from `seqFrom` with the `region` user property. */
async function sendWithRegion(t: Target, topic: string, region: string, seqFrom: number, count: number) {
  ok(
    await runJavaProbe('send', { endpoint: t.endpoint, topic, count, region, 'seq-from': seqFrom }, t.logDir),
    'send',
  );
}

const SQL_EU = "region = 'eu'";

/** SimpleConsumer with a SQL92 filter on a user property: only the matching messages arrive. */
export async function sqlFilterSimple(t: Target, topic: string, group: string) {
  await sendWithRegion(t, topic, 'eu', 0, 3);
  await sendWithRegion(t, topic, 'us', 3, 3);
  const received = ok(
    await runJavaProbe(
      'simple',
      {
        endpoint: t.endpoint,
        topic,
        group,
        count: 3,
        filter: SQL_EU,
        'filter-type': 'SQL92',
        'timeout-ms': 60_000,
      },
      t.logDir,
    ),
    'simple',
  );
  // A consumer that has what it wants stops; one more short run shows nothing else was due.
  const more = ok(
    await runJavaProbe(
      'simple',
      {
        endpoint: t.endpoint,
        topic,
        group,
        count: 1,
        filter: SQL_EU,
        'filter-type': 'SQL92',
        'timeout-ms': 8_000,
      },
      t.logDir,
    ),
    'simple',
  );
  return {
    received: eventsNamed(received, 'received')
      .map((e) => ({ seq: seqOf(e), region: e.region, attempt: e.attempt }))
      .sort((a, b) => a.seq - b.seq),
    complete: eventsNamed(received, 'complete').length,
    later: eventsNamed(more, 'received').length,
  };
}

/** PushConsumer with a SQL92 filter (and an OR of two conditions): only the matching messages arrive. */
export async function sqlFilterPush(t: Target, topic: string, group: string) {
  await sendWithRegion(t, topic, 'eu', 0, 3);
  await sendWithRegion(t, topic, 'us', 3, 3);
  await sendWithRegion(t, topic, 'apac', 6, 2);
  const pushed = ok(
    await runJavaProbe(
      'push',
      {
        endpoint: t.endpoint,
        topic,
        group,
        count: 5,
        filter: "region = 'eu' OR region = 'apac'",
        'filter-type': 'SQL92',
        'timeout-ms': 90_000,
        // Anything else that was due arrives while the consumer lingers.
        'linger-ms': 3_000,
      },
      t.logDir,
    ),
    'push',
  );
  return {
    received: eventsNamed(pushed, 'received')
      .map((e) => ({ seq: seqOf(e), region: e.region, attempt: e.attempt }))
      .sort((a, b) => a.seq - b.seq),
    complete: eventsNamed(pushed, 'complete').length,
  };
}

/**
 * PushConsumer failing every delivery of a group allowed one retry: each message is delivered
 * twice, then lands in `%DLQ%<group>`, where a SimpleConsumer reads it with its id, keys and body.
 */
export async function pushFailuresGoToDeadLetters(t: Target, topic: string, group: string) {
  await t.limitRetries(group, 1);
  const sent = ok(await runJavaProbe('send', { endpoint: t.endpoint, topic, count: 2 }, t.logDir), 'send');
  const pushed = ok(
    await runJavaProbe(
      'push',
      {
        endpoint: t.endpoint,
        topic,
        group,
        'fail-first': 99,
        // 2 messages × (1 attempt + 1 retry); linger so the last failure's nack goes out.
        received: 4,
        'linger-ms': 3_000,
        'timeout-ms': 120_000,
      },
      t.logDir,
    ),
    'push',
  );
  const dead = ok(
    await runJavaProbe(
      'simple',
      {
        endpoint: t.endpoint,
        topic: `%DLQ%${group}`,
        group: `${group}DeadLetters`,
        count: 2,
        'timeout-ms': 120_000,
      },
      t.logDir,
    ),
    'simple',
  );
  const sentIds = new Set(eventsNamed(sent, 'sent').map((e) => e.id));
  return {
    attempts: eventsNamed(pushed, 'received')
      .map((e) => ({ seq: seqOf(e), attempt: e.attempt }))
      .sort((a, b) => a.seq - b.seq || Number(a.attempt) - Number(b.attempt)),
    failed: eventsNamed(pushed, 'failed').length,
    deadLetters: eventsNamed(dead, 'received')
      .map((e) => ({ seq: seqOf(e), topic: e.topic, keys: e.keys, body: e.body, sameId: sentIds.has(e.id) }))
      .sort((a, b) => a.seq - b.seq),
    deadComplete: eventsNamed(dead, 'complete').length,
  };
}

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

/** The client error of a probe that failed: exception class and RocketMQ response code. */
function clientError(run: ProbeRun) {
  const error = eventsNamed(run, 'error')[0];
  const failed = eventsNamed(run, 'send-failed')[0];
  const event = error ?? failed;
  if (!event) return undefined;
  return {
    at: error ? 'start' : 'send',
    class: event.class,
    code: Number(/response-code=(\d+)/.exec(String(event.message))?.[1] ?? NaN),
  };
}

/** `{ 'access-key': …, 'secret-key': … }`, or `{}` for none. */
export type Credentials = Record<string, string>;

/**
 * ACL: a producer and a SimpleConsumer with the given credentials on `topic`/`group`. Returns what
 * was sent and received, or the client error that stopped it (class and response code).
 */
export async function aclSendAndReceive(t: Target, topic: string, group: string, credentials: Credentials) {
  const sent = await runJavaProbe(
    'send',
    { endpoint: t.endpoint, topic, count: 2, ...credentials },
    t.logDir,
  );
  const sendError = clientError(sent);
  if (sendError) return { sent: eventsNamed(sent, 'sent').length, error: sendError, exit: sent.code };
  const received = await runJavaProbe(
    'simple',
    { endpoint: t.endpoint, topic, group, count: 2, 'timeout-ms': 60_000, ...credentials },
    t.logDir,
  );
  return {
    sent: eventsNamed(sent, 'sent').length,
    received: eventsNamed(received, 'received')
      .map((e) => seqOf(e))
      .sort(),
    complete: eventsNamed(received, 'complete').length,
    error: clientError(received),
    exit: received.code,
  };
}

/**
 * PushConsumer whose handler outlasts the 60 s invisible time of a push receive: the server renews
 * the invisible time while the handler runs, so the message is consumed once, on attempt 1.
 */
export async function pushLongHandlerRenewed(t: Target, topic: string, group: string, handleMs: number) {
  ok(await runJavaProbe('send', { endpoint: t.endpoint, topic, count: 1 }, t.logDir), 'send');
  const pushed = ok(
    await runJavaProbe(
      'push',
      {
        endpoint: t.endpoint,
        topic,
        group,
        count: 1,
        'handle-ms': handleMs,
        // a redelivery, had there been one, arrives while the consumer lingers
        'linger-ms': 5_000,
        'timeout-ms': handleMs + 90_000,
      },
      t.logDir,
      handleMs + 150_000,
    ),
    'push',
  );
  return {
    received: eventsNamed(pushed, 'received').map((e) => ({ seq: seqOf(e), attempt: e.attempt })),
    consumed: eventsNamed(pushed, 'consumed').map((e) => ({ attempt: e.attempt })),
    complete: eventsNamed(pushed, 'complete').length,
  };
}

/**
 * RecallMessage: three messages delayed 15 s, the first recalled (twice: the second answer shows
 * what a repeated recall gets); the other two arrive when due, the recalled one never.
 */
export async function delayedRecall(t: Target, topic: string, group: string) {
  const sent = ok(
    await runJavaProbe(
      'send',
      { endpoint: t.endpoint, topic, count: 3, 'delay-ms': 15_000, 'recall-first': 1, 'recall-times': 2 },
      t.logDir,
    ),
    'send',
  );
  // waits for 3 (the recalled one included, had it not been recalled) well past the due time
  const received = ok(
    await runJavaProbe(
      'simple',
      { endpoint: t.endpoint, topic, group, count: 3, 'timeout-ms': 45_000 },
      t.logDir,
    ),
    'simple',
  );
  return {
    recalls: sent.events
      .filter((e) => e.event === 'recalled' || e.event === 'recall-failed')
      .map((e) => ({
        event: e.event,
        seq: e.seq,
        n: e.n,
        class: e.class,
        code: e.message ? Number(/response-code=(\d+)/.exec(String(e.message))?.[1] ?? NaN) : undefined,
      })),
    received: eventsNamed(received, 'received')
      .map((e) => ({ seq: seqOf(e), attempt: e.attempt }))
      .sort((a, b) => a.seq - b.seq),
  };
}
