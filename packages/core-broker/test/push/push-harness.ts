import WebSocket from 'ws';
import { Broker } from '../../src/broker/broker';
import type { BrokerOptions } from '../../src/broker/broker-options';
import type { TopicInput } from '../../src/broker/topic-registry';
import { InProcessTransport } from '../../src/client/in-process-transport';
import { Producer } from '../../src/client/producer';
import type { ProducerMessage } from '../../src/client/producer';
import { MemoryStore } from '../../src/store/memory-store';
import type { MemoryStoreOptions } from '../../src/store/memory-store';
import * as net from 'node:net';
import { PushServer } from '../../src/push/push-server';
import type { PushServerOptions } from '../../src/push/push-options';
import { PUSH_SUBPROTOCOL } from '../../src/push/push-protocol';

/** Brokers on memory stores behind one in-process transport, a producer, and a push server on a port. */
export interface PushRig {
  brokers: Broker[];
  stores: MemoryStore[];
  transport: InProcessTransport;
  producer: Producer;
  server: PushServer;
  url: string;
  httpUrl: string;
  send(message: ProducerMessage): Promise<string>;
  close(): Promise<void>;
}

export async function startRig(
  options: {
    brokerNames?: string[];
    topics?: TopicInput[];
    server?: Partial<PushServerOptions>;
    broker?: Partial<BrokerOptions>;
    store?: MemoryStoreOptions;
  } = {},
): Promise<PushRig> {
  const stores: MemoryStore[] = [];
  const brokers: Broker[] = [];
  for (const brokerName of options.brokerNames ?? ['broker-a']) {
    const store = await MemoryStore.create({
      maxBytes: 256 * 1024 * 1024,
      retentionIntervalMs: 0,
      ...options.store,
    });
    stores.push(store);
    brokers.push(await Broker.start({ ...options.broker, store, brokerName }));
  }
  for (const topic of options.topics ?? []) for (const b of brokers) b.createTopic(topic);
  const transport = new InProcessTransport(brokers);
  const producer = new Producer({ group: 'push-test-producer', transport });
  await producer.start();
  const server = new PushServer({ transport, authorize: () => true, pollTimeoutMs: 2000, ...options.server });
  const address = await server.listen();
  const httpUrl = `http://127.0.0.1:${address.port}`;
  return {
    brokers,
    stores,
    transport,
    producer,
    server,
    url: `ws://127.0.0.1:${address.port}${server.path}`,
    httpUrl,
    send: async (message) => (await producer.send(message)).msgId,
    close: async () => {
      await server.close();
      await producer.shutdown();
      for (const b of brokers) await b.close();
      for (const s of stores) await s.close();
    },
  };
}

export type Frame = Record<string, unknown> & { type: string };

/** A raw protocol client: collects frames, waits for them, sends JSON. */
export class RawClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  private readonly waiters = new Set<() => void>();
  readonly opened: Promise<void>;

  constructor(
    readonly ws: WebSocket,
    options: { answerPings?: boolean } = {},
  ) {
    const answer = options.answerPings ?? true;
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.opened.catch(() => undefined); // a refused handshake is reported by the close
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      if (frame.type === 'ping' && answer) ws.send('{"type":"pong"}');
      this.frames.push(frame);
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  static async connect(
    url: string,
    options: { token?: string; protocols?: string[]; answerPings?: boolean; open?: boolean } = {},
  ): Promise<RawClient> {
    const full = options.token ? `${url}?token=${encodeURIComponent(options.token)}` : url;
    const client = new RawClient(new WebSocket(full, options.protocols ?? [PUSH_SUBPROTOCOL]), options);
    if (options.open !== false) await client.opened;
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  of(type: string, subscription?: string): Frame[] {
    return this.frames.filter(
      (f) => f.type === type && (subscription === undefined || f.subscription === subscription),
    );
  }

  /** Waits until `condition` holds (checked after every frame and at close). */
  async until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (condition()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(`timed out waiting for ${what}; last frames: ${JSON.stringify(this.frames.slice(-3))}`),
        );
      }, timeoutMs);
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  /** Waits for the first frame of `type` (for `subscription`) and returns it. */
  async next(type: string, subscription?: string, timeoutMs?: number): Promise<Frame> {
    await this.until(() => this.of(type, subscription).length > 0, `a "${type}" frame`, timeoutMs);
    return this.of(type, subscription)[0]!;
  }

  async closedWith(timeoutMs?: number): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== undefined, 'the close', timeoutMs);
    return this.closed!;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.ws.close();
    await this.closedWith().catch(() => this.ws.terminate());
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Waits (real time) until `condition` holds. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A TCP proxy in front of a port whose connections can all be cut at once (a network failure). */
export class CuttableProxy {
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly pairs: Set<net.Socket>,
  ) {}

  static async start(targetPort: number): Promise<CuttableProxy> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new CuttableProxy(server, (server.address() as net.AddressInfo).port, sockets);
  }

  /** Destroys every proxied connection (both sides see a reset, no close frame). */
  cut(): number {
    const n = this.pairs.size / 2;
    for (const s of [...this.pairs]) s.destroy();
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
