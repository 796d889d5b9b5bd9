import fc from 'fast-check';
import { queueKey } from '../../src/client/allocation';
import { Producer } from '../../src/client/producer';
import { PushConsumer } from '../../src/client/push-consumer';
import type { MessageListener } from '../../src/client/push-consumer';
import type { Cluster } from '../support/client-harness';
import { advance, startCluster, text } from '../support/client-harness';
import { settle } from '../support/settle';

/**
 * Properties of consumer groups under churn, on two brokers with a manual clock: at-least-once
 * delivery while members join and leave, single ownership of every queue once the group settles,
 * broadcast completeness, and per-group FIFO order under listener failures.
 */

const TOPIC = 'Orders';
const GROUP = 'CG';

async function withCluster<T>(
  fifo: boolean,
  run: (cluster: Cluster, producer: Producer, consumers: PushConsumer[]) => Promise<T>,
): Promise<T> {
  const cluster = await startCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: TOPIC, queueCount: 4, fifo }],
  });
  const producer = new Producer({ group: 'PG', transport: cluster.transport, clock: cluster.clock });
  await producer.start();
  const consumers: PushConsumer[] = [];
  try {
    return await run(cluster, producer, consumers);
  } finally {
    for (const c of consumers) await c.shutdown();
    await producer.shutdown();
    await cluster.close();
  }
}

type Step =
  | { kind: 'join' }
  | { kind: 'leave'; index: number }
  | { kind: 'send'; count: number }
  | { kind: 'tick'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constant<Step>({ kind: 'join' }),
  fc.record({ kind: fc.constant('leave' as const), index: fc.nat(10) }),
  fc.record({ kind: fc.constant('send' as const), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 100, max: 25_000 }) }),
);

describe('consumer group properties', () => {
  test('clustering with members joining and leaving: every message consumed at least once; settled queues have one owner', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 3, maxLength: 14 }), fc.nat(), async (steps, seed) => {
        await withCluster(false, async (cluster, producer, consumers) => {
          const consumed = new Set<string>();
          const sent: string[] = [];
          let joined = 0;
          // fails the first delivery of about one message in five, so retries go through rebalances too
          const listener: MessageListener = (messages) => {
            const m = messages[0]!;
            const body = text(m);
            if (m.reconsumeTimes === 0 && (hash(body) + seed) % 5 === 0) return 'RECONSUME_LATER';
            consumed.add(body);
            return 'CONSUME_SUCCESS';
          };
          const live: PushConsumer[] = [];
          const join = async (): Promise<void> => {
            const c = new PushConsumer({
              group: GROUP,
              transport: cluster.transport,
              clock: cluster.clock,
              clientId: `member-${joined++}`,
              consumeFromWhere: 'FIRST_OFFSET',
              pullBatchSize: 4,
            });
            c.subscribe(TOPIC).registerMessageListener(listener);
            consumers.push(c);
            live.push(c);
            await c.start();
          };
          await join();
          for (const s of steps) {
            if (s.kind === 'join' && live.length < 5) await join();
            else if (s.kind === 'leave' && live.length > 0)
              await live.splice(s.index % live.length, 1)[0]!.shutdown();
            else if (s.kind === 'send') {
              for (let i = 0; i < s.count; i++) {
                const body = `m${sent.length}`;
                sent.push(body);
                await producer.send({ topic: TOPIC, body });
              }
            } else if (s.kind === 'tick') await advance(cluster.clock, s.ms, 5000);
            await settle();
          }
          if (live.length === 0) await join();
          // let the group settle: rebalances, retries (10 s backoff) and offset commits run
          for (let i = 0; i < 30 && sent.some((b) => !consumed.has(b)); i++)
            await advance(cluster.clock, 5000);
          expect(sent.filter((b) => !consumed.has(b))).toEqual([]);
          await advance(cluster.clock, 20_000, 5000);
          const owners = new Map<string, string>();
          for (const c of live) {
            for (const q of c.assignment()) {
              const key = queueKey(q);
              expect(owners.get(key)).toBeUndefined();
              owners.set(key, c.clientId);
            }
          }
          // every queue of the topic (8) and of the retry topic (one per broker) has its owner
          expect(owners.size).toBe(10);
        });
      }),
      { numRuns: 15 },
    );
  });

  test('broadcasting: every consumer sees every message, whenever it started', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 24 }),
        async (startAfter, total) => {
          await withCluster(false, async (cluster, producer, consumers) => {
            const seen = startAfter.map(() => new Set<string>());
            const sent: string[] = [];
            const starts = startAfter.map((after, i) => ({ after: Math.min(after, total), i }));
            for (let n = 0; n <= total; n++) {
              for (const s of starts.filter((x) => x.after === n)) {
                const c = new PushConsumer({
                  group: GROUP,
                  transport: cluster.transport,
                  clock: cluster.clock,
                  messageModel: 'BROADCASTING',
                  consumeFromWhere: 'FIRST_OFFSET',
                  clientId: `b-${s.i}`,
                });
                c.subscribe(TOPIC).registerMessageListener((messages) => {
                  for (const m of messages) seen[s.i]!.add(text(m));
                  return 'CONSUME_SUCCESS';
                });
                consumers.push(c);
                await c.start();
              }
              if (n < total) {
                sent.push(`m${n}`);
                await producer.send({ topic: TOPIC, body: `m${n}` });
              }
            }
            for (let i = 0; i < 10 && seen.some((s) => s.size < total); i++)
              await advance(cluster.clock, 1000);
            for (const s of seen) expect([...s].sort()).toEqual([...sent].sort());
          });
        },
      ),
      { numRuns: 15 },
    );
  });

  test('orderly: per message group, messages succeed in send order under random listener failures', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
        fc.integer({ min: 1, max: 2 }),
        async (groups, failures, members) => {
          await withCluster(true, async (cluster, producer, consumers) => {
            const succeeded = new Map<string, number[]>();
            let calls = 0;
            let consecutive = 0;
            const listener: MessageListener = (messages) => {
              const m = messages[0]!;
              // fail as the generated pattern says, but never so often that a message is dead-lettered
              const fail = failures[calls++ % failures.length]! && consecutive < 3;
              consecutive = fail ? consecutive + 1 : 0;
              if (fail) return 'RECONSUME_LATER';
              const [group, seq] = text(m).split(':');
              const list = succeeded.get(group!) ?? [];
              list.push(Number(seq));
              succeeded.set(group!, list);
              return 'CONSUME_SUCCESS';
            };
            for (let i = 0; i < members; i++) {
              const c = new PushConsumer({
                group: GROUP,
                transport: cluster.transport,
                clock: cluster.clock,
                clientId: `o-${i}`,
                consumeFromWhere: 'FIRST_OFFSET',
                maxReconsumeTimes: 16,
              });
              c.subscribe(TOPIC).registerMessageListener(listener, { orderly: true });
              consumers.push(c);
              await c.start();
            }
            await settle();
            for (const c of consumers) await c.rebalance();
            const expected = new Map<string, number[]>();
            for (const [seq, g] of groups.entries()) {
              const group = `g${g}`;
              expected.set(group, [...(expected.get(group) ?? []), seq]);
              await producer.send({ topic: TOPIC, body: `${group}:${seq}`, messageGroup: group });
            }
            const done = (): number => [...succeeded.values()].reduce((n, l) => n + l.length, 0);
            for (let i = 0; i < 200 && done() < groups.length; i++) await advance(cluster.clock, 1000);
            expect(new Map([...succeeded].sort())).toEqual(new Map([...expected].sort()));
          });
        },
      ),
      { numRuns: 15 },
    );
  });
});

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h;
}
