import * as net from 'node:net';
import { Producer } from '../../src/client/producer';
import { PushConsumer } from '../../src/client/push-consumer';
import { ConsumeResult, type MessageExt } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { advance, gate, text, until } from '../support/client-harness';
import { startTcpCluster, type TcpCluster } from '../server/tcp-harness';

// issue 15 #1: an orderly consumer keeps exclusivity of its queues across a cut connection.
// Two members of a group consume a FIFO topic over TCP; one of them reaches the broker through a
// proxy whose sockets the test cuts while that member is inside its listener. The broker must not
// give the cut member's queues to the other member while their locks are live, and the cut member
// must not consume on a lock it has not confirmed since the cut. Measured from the listeners: no
// message group is in two listeners at once, and no member consumes a group's message after a
// later one of the same group.

const TOPIC = 'Fifo';
const GROUP = 'FifoG';
const GROUPS = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7'];

/** A TCP proxy to `target` whose open sockets `cut()` destroys (the member reconnects through it). */
class CuttableProxy {
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server) {}

  static async start(target: string): Promise<CuttableProxy> {
    const [host, port] = target.split(':');
    const server = net.createServer();
    const proxy = new CuttableProxy(server);
    server.on('connection', (client) => {
      const upstream = net.connect(Number(port), host);
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Cuts every open connection (both directions). */
  cut(): number {
    const count = this.sockets.size;
    for (const s of [...this.sockets]) s.destroy();
    return count;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** What the listeners saw, across members. */
class Observer {
  /** Members inside a listener with a message of each group right now. */
  private readonly inside = new Map<string, Set<string>>();
  /** Last sequence number each member consumed of each group. */
  private readonly last = new Map<string, number>();
  overlaps: string[] = [];
  regressions: string[] = [];
  readonly consumed = new Set<string>();

  enter(member: string, m: MessageExt): void {
    const group = m.properties.fifoGroup!;
    const seq = Number(m.properties.seq);
    const now = this.inside.get(group) ?? new Set<string>();
    if (now.size > 0 && !now.has(member))
      this.overlaps.push(`${group}#${seq} in ${member} while in ${[...now]}`);
    now.add(member);
    this.inside.set(group, now);
    const key = `${member}/${group}`;
    const previous = this.last.get(key);
    if (previous !== undefined && seq < previous)
      this.regressions.push(`${member} consumed ${group}#${seq} after #${previous}`);
    this.last.set(key, seq);
  }

  leave(member: string, m: MessageExt): void {
    this.inside.get(m.properties.fifoGroup!)?.delete(member);
    this.consumed.add(text(m));
  }
}

let t: TcpCluster;
let proxy: CuttableProxy;
let cutTransport: TcpTransport;
let producer: Producer;
const consumers: PushConsumer[] = [];

beforeEach(async () => {
  t = await startTcpCluster({ topics: [{ topic: TOPIC, queueCount: 4, fifo: true }] });
  proxy = await CuttableProxy.start(t.address('broker-a'));
  cutTransport = new TcpTransport({ reconnectBackoffMinMs: 0, brokers: { 'broker-a': proxy.address } });
  producer = new Producer({ group: 'PG', transport: t.cluster.transport, clock: t.cluster.clock });
  await producer.start();
});

afterEach(async () => {
  for (const c of consumers.splice(0)) await c.shutdown();
  await producer.shutdown();
  await cutTransport.close();
  await proxy.close();
  await t.close();
});

async function sendRound(round: number): Promise<string[]> {
  const bodies: string[] = [];
  for (const group of GROUPS) {
    const body = `${group}#${round}`;
    bodies.push(body);
    await producer.send({
      topic: TOPIC,
      messageGroup: group,
      properties: { fifoGroup: group, seq: String(round) },
      body,
    });
  }
  return bodies;
}

test('a member whose connection is cut inside its listener keeps its queues: no group in two listeners, no order regression', async () => {
  const { clock } = t.cluster;
  const observer = new Observer();
  const held = gate();
  let holding: string | undefined;
  const member = (name: string, transport: TcpTransport | typeof t.transport): PushConsumer => {
    const c = new PushConsumer({
      group: GROUP,
      clientId: name,
      transport,
      clock,
      consumeFromWhere: 'FIRST_OFFSET',
      suspendTimeoutMs: 5000,
    });
    c.subscribe(TOPIC, '*');
    c.registerMessageListener(
      async ([m]) => {
        observer.enter(name, m!);
        // the cut member stops inside its listener with the first message of round 1 it gets
        if (name === 'A' && holding === undefined && m!.properties.seq === '1') {
          holding = text(m!);
          await held.promise;
        }
        observer.leave(name, m!);
        return ConsumeResult.CONSUME_SUCCESS;
      },
      { orderly: true },
    );
    consumers.push(c);
    return c;
  };
  const a = member('A', cutTransport);
  const b = member('B', t.transport);
  await a.start();
  await b.start();
  // settle the shares: 2 queues each
  const share = (c: PushConsumer): number => c.assignment().filter((q) => q.topic === TOPIC).length;
  for (let i = 0; i < 10 && !(share(a) === 2 && share(b) === 2); i++) {
    await advance(clock, 20_000, 5_000);
    await until(() => true, 'a turn');
  }
  expect([share(a), share(b)]).toEqual([2, 2]);

  const sent = await sendRound(0);
  await until(() => sent.every((body) => observer.consumed.has(body)), 'round 0 consumed', 4000);
  sent.push(...(await sendRound(1)), ...(await sendRound(2)));
  await until(() => holding !== undefined, 'A inside its listener', 4000);

  // cut A's connections while it is inside its listener; its long polls fail, it reconnects
  expect(proxy.cut()).toBeGreaterThan(0);
  // give the broker's membership notice and B's rebalance (and A's pull retries) time to run
  for (let i = 0; i < 6; i++) {
    await advance(clock, 5_000, 1_000);
    await until(() => true, 'a turn');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  held.open();
  for (let i = 0; i < 20 && !sent.every((body) => observer.consumed.has(body)); i++) {
    await advance(clock, 5_000, 1_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(sent.filter((body) => !observer.consumed.has(body))).toEqual([]);
  expect(observer.overlaps).toEqual([]);
  expect(observer.regressions).toEqual([]);
});
