import { RocketError } from '@rocketnest/core-broker';
import { Broker, InProcessTransport, MemoryStore } from '@rocketnest/core-broker/broker';
import type { TopicInput } from '@rocketnest/core-broker/broker';
import type { MessageView, Transport } from '@rocketnest/core-broker';

export type SendMode = 'ok' | 'busy' | 'unavailable' | 'hang';

/** An embedded broker (memory store, in-process transport) and a transport whose sends can be made to fail. */
export interface EmbeddedBroker {
  broker: Broker;
  transport: Transport & { mode: SendMode; registrations: number; unregistrations: number };
  /** Every message of a one-queue topic. */
  read(topic: string): Promise<MessageView[]>;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(topics: Array<string | TopicInput>): Promise<EmbeddedBroker> {
  const store = await MemoryStore.create({ retentionIntervalMs: 0 });
  const broker = await Broker.start({ store });
  for (const t of topics)
    broker.createTopic({ queueCount: 1, ...(typeof t === 'string' ? { topic: t } : t) });
  const inner = new InProcessTransport(broker);
  const hanging = new Set<() => void>();
  const transport = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'mode') return state.mode;
      if (property === 'registrations') return state.registrations;
      if (property === 'unregistrations') return state.unregistrations;
      if (property === 'unregister')
        return (...args: Parameters<Transport['unregister']>) => {
          state.unregistrations++;
          return target.unregister(...args);
        };
      if (property === 'register')
        return (...args: Parameters<Transport['register']>) => {
          state.registrations++;
          return target.register(...args);
        };
      if (property === 'send')
        return (...args: Parameters<Transport['send']>) => {
          if (state.mode === 'busy')
            return Promise.reject(
              new RocketError('BROKER_BUSY', 'broker is over its send watermark (injected)'),
            );
          if (state.mode === 'unavailable')
            return Promise.reject(new RocketError('BROKER_UNAVAILABLE', 'broker connection lost (injected)'));
          if (state.mode === 'hang')
            return new Promise((_resolve, reject) => hanging.add(() => reject(new Error('closed'))));
          return target.send(...args);
        };
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    set(_target, property, value) {
      if (property === 'mode') state.mode = value as SendMode;
      return true;
    },
  }) as unknown as Transport & { mode: SendMode; registrations: number; unregistrations: number };
  const state = { mode: 'ok' as SendMode, registrations: 0, unregistrations: 0 };
  return {
    broker,
    transport,
    read: async (topic) => {
      const out: MessageView[] = [];
      let offset = 0;
      for (;;) {
        const r = await broker.pull({
          consumerGroup: 'test-reader',
          topic,
          queueId: 0,
          queueOffset: offset,
          maxCount: 256,
          suspendTimeoutMs: 0,
        });
        out.push(...r.messages);
        if (r.status !== 'FOUND') return out;
        offset = r.nextOffset;
      }
    },
    close: async () => {
      for (const reject of hanging) reject();
      await broker.close();
      await store.close();
    },
  };
}
