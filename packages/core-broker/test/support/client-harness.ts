import { Broker } from '../../src/broker/broker';
import type { BrokerOptions } from '../../src/broker/broker-options';
import type { TopicInput } from '../../src/broker/topic-registry';
import { InProcessTransport } from '../../src/client/in-process-transport';
import type { MessageView } from '../../src/message/message';
import { MemoryStore } from '../../src/store/memory-store';
import { ManualClock } from './manual-clock';
import { settle } from './settle';

/** Brokers on memory stores, one in-process transport over them, one manual clock for all. */
export interface Cluster {
  clock: ManualClock;
  brokers: Broker[];
  stores: MemoryStore[];
  transport: InProcessTransport;
  broker(name: string): Broker;
  /** Creates (or updates) a topic on every broker. */
  createTopic(input: TopicInput): void;
  /** Closes every broker and store (idempotent). */
  close(): Promise<void>;
}

export async function startCluster(
  options: { brokerNames?: string[]; topics?: TopicInput[]; broker?: Partial<BrokerOptions> } = {},
): Promise<Cluster> {
  const clock = new ManualClock();
  const names = options.brokerNames ?? ['broker-a'];
  const stores: MemoryStore[] = [];
  const brokers: Broker[] = [];
  for (const brokerName of names) {
    const store = await MemoryStore.create({ clock, maxBytes: 64 * 1024 * 1024, retentionIntervalMs: 0 });
    stores.push(store);
    brokers.push(await Broker.start({ ...options.broker, store, clock, brokerName }));
  }
  const transport = new InProcessTransport(brokers);
  const cluster: Cluster = {
    clock,
    brokers,
    stores,
    transport,
    broker: (name) => brokers.find((b) => b.brokerName === name)!,
    createTopic: (input) => {
      for (const b of brokers) b.createTopic(input);
    },
    close: async () => {
      for (const b of brokers) await b.close();
      for (const s of stores) await s.close();
    },
  };
  for (const topic of options.topics ?? []) cluster.createTopic(topic);
  return cluster;
}

/** Moves the clock forward `ms` in steps of `stepMs`, letting async work run after each step. */
export async function advance(clock: ManualClock, ms: number, stepMs = Math.min(ms, 1000)): Promise<void> {
  await settle();
  for (let done = 0; done < ms; done += stepMs) {
    clock.advance(Math.min(stepMs, ms - done));
    await settle();
  }
}

/** Lets async work run until `condition` holds; throws naming `what` if it does not within `turns`. */
export async function until(condition: () => boolean, what: string, turns = 400): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await settle(1);
  }
  if (!condition()) throw new Error(`timed out waiting for: ${what}`);
}

/** Every message of a queue of a broker (no filter), read directly from the broker. */
export async function readQueue(broker: Broker, topic: string, queueId = 0): Promise<MessageView[]> {
  const out: MessageView[] = [];
  let offset = broker.minOffset({ topic, queueId });
  for (;;) {
    const r = await broker.pull({
      consumerGroup: 'harness',
      topic,
      queueId,
      queueOffset: offset,
      maxCount: 256,
      suspendTimeoutMs: 0,
    });
    out.push(...r.messages);
    if (r.status !== 'FOUND' && r.status !== 'NO_MATCHED_MESSAGE') return out;
    offset = r.nextOffset;
  }
}

export const text = (m: { body: Uint8Array }): string => Buffer.from(m.body).toString('utf8');

/** A promise with its resolve function, for gating listeners and fake transports. */
export function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}
