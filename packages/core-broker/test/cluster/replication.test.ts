import * as net from 'node:net';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import type { SendResult } from '../../src/client/producer-types';
import { TcpTransport } from '../../src/client/tcp-transport';
import { tempDir } from '../support/temp-dir';
import { CliProcess } from './process-harness';

jest.setTimeout(120_000);

const TOPIC = 'Orders';
const QUEUES = 4;

/**
 * A TCP proxy between a slave and its master's HA port: it can cut the link (refusing new
 * connections too) and flip one byte of the next DATA frame's record bytes master → slave.
 */
class LinkProxy {
  private readonly sockets = new Set<net.Socket>();
  private cut = false;
  /** Flip a byte this far into the master → slave stream of the next connection that carries it. */
  private corruptAt: number | undefined;
  corrupted = 0;
  private constructor(
    private readonly server: net.Server,
    private readonly target: number,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(targetPort: number): Promise<LinkProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new LinkProxy(server, targetPort);
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  private accept(client: net.Socket): void {
    if (this.cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target, '127.0.0.1');
    this.sockets.add(client).add(upstream);
    let seen = 0;
    upstream.on('data', (chunk: Buffer) => {
      if (this.corruptAt !== undefined && seen + chunk.length > this.corruptAt) {
        const copy = Buffer.from(chunk);
        copy[this.corruptAt - seen]! ^= 0xff;
        this.corruptAt = undefined;
        this.corrupted++;
        chunk = copy;
      }
      seen += chunk.length;
      client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
  }

  /** Cuts every connection and refuses new ones until {@link restore}. */
  cutLink(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.cut = false;
  }

  /**
   * Damages the byte `at` bytes into the next connection's master → slave stream (past the
   * welcome frame: inside the first DATA frame's record bytes) and drops the current links so
   * the slave reconnects through it.
   */
  corruptNextConnection(at: number): void {
    this.corruptAt = at;
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Every message of every queue of the topic on one broker: msgId → body. */
async function readAll(transport: TcpTransport, brokerName: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let queueId = 0; queueId < QUEUES; queueId++) {
    let offset = 0;
    for (let round = 0; round < 10_000; round++) {
      const r = await transport.pull(brokerName, {
        consumerGroup: 'Reader',
        topic: TOPIC,
        queueId,
        queueOffset: offset,
        maxCount: 256,
        suspendTimeoutMs: 0,
      });
      for (const m of r.messages) out.set(m.msgId, m.body.toString());
      if (r.status !== 'FOUND') break;
      offset = r.nextOffset;
    }
  }
  return out;
}

describe('master/slave replication of the commit log, as separate processes', () => {
  const processes: CliProcess[] = [];
  const closers: Array<() => Promise<void>> = [];
  const dirs = tempDir('rocketnest-replication-');
  let run = 0;

  const startMaster = (dir: string, role = 'SYNC_MASTER', extra: string[] = []): CliProcess => {
    const p = new CliProcess(`master-${run}`, [
      'broker',
      '--broker-name',
      'broker-a',
      '--role',
      role,
      '--store-dir',
      dir,
      '--flush',
      'sync',
      '--port',
      '0',
      '--topics',
      `${TOPIC}:${QUEUES}`,
      ...extra,
    ]);
    processes.push(p);
    return p;
  };
  const startSlave = (
    dir: string,
    masterHa: string,
    extra = ['--topics', `${TOPIC}:${QUEUES}`],
  ): CliProcess => {
    const p = new CliProcess(`slave-${run}`, [
      'broker',
      '--broker-name',
      'broker-a',
      '--role',
      'SLAVE',
      '--broker-id',
      '1',
      '--master-address',
      masterHa,
      '--store-dir',
      dir,
      '--flush',
      'sync',
      '--port',
      '0',
      ...extra,
    ]);
    processes.push(p);
    return p;
  };
  const haPortOf = async (p: CliProcess): Promise<number> =>
    Number((await p.waitFor(/slaves connect to [\d.]+:(\d+)/))[1]);
  const transportTo = (address: string): TcpTransport => {
    const t = new TcpTransport({
      brokers: { 'broker-a': address },
      requestTimeoutMs: 10_000,
      reconnectBackoffMinMs: 10,
    });
    closers.push(() => t.close());
    return t;
  };

  afterEach(async () => {
    for (const close of closers.splice(0)) await close().catch(() => undefined);
    for (const p of processes) p.kill('SIGKILL');
    await Promise.all(processes.splice(0).map((p) => p.exited));
  });
  afterAll(() => dirs.cleanup());

  test('SYNC_MASTER killed with -9 under load: every acknowledged message is readable on the slave (3 runs); the slave, promoted, takes writes', async () => {
    const totals = { acknowledged: 0, notConfirmed: 0, failed: 0, onSlave: 0 };
    for (run = 0; run < 3; run++) {
      const dir = path.join(dirs.dir, `kill-${run}`);
      const master = startMaster(path.join(dir, 'master'));
      const slave = startSlave(path.join(dir, 'slave'), `127.0.0.1:${await haPortOf(master)}`);
      await slave.waitFor(/replication: joined master/);
      const masterAddress = await master.address();
      const slaveAddress = await slave.address();
      const producer = new Producer({
        group: 'PG',
        transport: transportTo(masterAddress),
        retryTimesWhenSendFailed: 0,
        sendTimeoutMs: 10_000,
      });
      await producer.start();
      const acknowledged = new Map<string, string>();
      let next = 0;
      let killed = false;
      // the kill lands at a time of its own, whatever the senders are doing
      const killAfterAcks = 100 + Math.floor(Math.random() * 400);
      const sender = async (): Promise<void> => {
        while (next < 50_000) {
          const i = next++;
          try {
            const r: SendResult = await producer.send({ topic: TOPIC, body: `r${run}-m${i}` });
            if (r.status === 'SEND_OK') acknowledged.set(r.msgId, `r${run}-m${i}`);
            else totals.notConfirmed++;
            if (acknowledged.size >= killAfterAcks && !killed) {
              killed = true;
              setTimeout(() => master.kill('SIGKILL'), Math.floor(Math.random() * 20));
            }
          } catch {
            totals.failed++;
            if (killed) return;
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, sender));
      expect(await master.exited).toBeNull();
      expect(acknowledged.size).toBeGreaterThanOrEqual(killAfterAcks);
      await producer.shutdown();
      const onSlave = await readAll(transportTo(slaveAddress), 'broker-a');
      const lost = [...acknowledged].filter(([id, body]) => onSlave.get(id) !== body);
      expect(lost).toEqual([]);
      totals.acknowledged += acknowledged.size;
      totals.onSlave += onSlave.size;
      slave.kill('SIGTERM');
      expect(await slave.exited).toBe(0);
      if (run === 0) {
        // manual promotion: the slave restarts on its directory as the master and takes writes
        const promoted = startMaster(path.join(dir, 'slave'), 'ASYNC_MASTER');
        const promotedTransport = transportTo(await promoted.address());
        const p2 = new Producer({
          group: 'PG',
          transport: promotedTransport,
          retryTimesWhenSendFailed: 0,
          sendTimeoutMs: 10_000,
        });
        await p2.start();
        const after = await p2.send({ topic: TOPIC, body: 'after-promotion' });
        expect(after.status).toBe('SEND_OK');
        await p2.shutdown();
        const held = await readAll(promotedTransport, 'broker-a');
        expect([...acknowledged].filter(([id, body]) => held.get(id) !== body)).toEqual([]);
        expect(held.get(after.msgId)).toBe('after-promotion');
        promoted.kill('SIGTERM');
        expect(await promoted.exited).toBe(0);
      }
    }
    console.log(
      `replication kill -9 test: 3 runs, ${totals.acknowledged} acknowledged SEND_OK, all on the slave (${totals.onSlave} held there); ` +
        `${totals.notConfirmed} not confirmed, ${totals.failed} failed`,
    );
  });

  test('a cut link: sync sends answer FLUSH_SLAVE_TIMEOUT, never SEND_OK; restored, the slave catches up; a slave restart resumes', async () => {
    run = 10;
    const master = startMaster(path.join(dirs.dir, 'cut', 'master'), 'SYNC_MASTER', [
      '--sync-flush-timeout-ms',
      '500',
    ]);
    const proxy = await LinkProxy.start(await haPortOf(master));
    closers.push(() => proxy.close());
    const slaveDir = path.join(dirs.dir, 'cut', 'slave');
    let slave = startSlave(slaveDir, proxy.address);
    await slave.waitFor(/replication: joined master/);
    const producer = new Producer({
      group: 'PG',
      transport: transportTo(await master.address()),
      retryTimesWhenSendFailed: 0,
      sendTimeoutMs: 10_000,
    });
    await producer.start();
    const sent = new Map<string, string>();
    const send = async (body: string): Promise<SendResult> => {
      const r = await producer.send({ topic: TOPIC, body });
      sent.set(r.msgId, body);
      return r;
    };
    for (let i = 0; i < 20; i++) expect((await send(`before-${i}`)).status).toBe('SEND_OK');

    proxy.cutLink();
    const whileCut: SendResult[] = [];
    for (let i = 0; i < 5; i++) whileCut.push(await send(`cut-${i}`));
    // no send is confirmed while no slave can hold it: the slave timed out or is gone
    for (const r of whileCut) expect(['FLUSH_SLAVE_TIMEOUT', 'SLAVE_NOT_AVAILABLE']).toContain(r.status);
    expect(whileCut.map((r) => r.status)).not.toContain('SEND_OK');

    proxy.restore();
    await slave
      .waitFor(/replication: joined master .*\n(.|\n)*replication: joined master/, 30_000)
      .catch(() => undefined);
    await until(
      'a confirmed send after the link is back',
      async () => (await send('after')).status === 'SEND_OK',
    );
    const slaveTransport = transportTo(await slave.address());
    await until(
      'the slave holding every message',
      async () => (await readAll(slaveTransport, 'broker-a')).size === sent.size,
    );

    // the slave restarts on its directory and resumes from its own end
    slave.kill('SIGKILL');
    await slave.exited;
    for (let i = 0; i < 10; i++) await send(`while-down-${i}`);
    slave = startSlave(slaveDir, proxy.address);
    const joined = await slave.waitFor(/replication: joined master \S+ from offset (\d+)/);
    expect(Number(joined[1])).toBeGreaterThan(0);
    const again = transportTo(await slave.address());
    await until('the restarted slave holding every message', async () => {
      const held = await readAll(again, 'broker-a');
      return held.size === sent.size && [...sent].every(([id, body]) => held.get(id) === body);
    });
    await producer.shutdown();
  });

  test('a byte flipped in transit is detected and never stored; topics and offsets are copied; the slave refuses writes', async () => {
    run = 20;
    const master = startMaster(path.join(dirs.dir, 'flip', 'master'), 'ASYNC_MASTER');
    const proxy = await LinkProxy.start(await haPortOf(master));
    closers.push(() => proxy.close());
    const masterTransport = transportTo(await master.address());
    const producer = new Producer({
      group: 'PG',
      transport: masterTransport,
      retryTimesWhenSendFailed: 0,
      sendTimeoutMs: 10_000,
    });
    await producer.start();
    const sent = new Map<string, string>();
    for (let i = 0; i < 50; i++) {
      const r = await producer.send({ topic: TOPIC, body: `flip-${i}` });
      sent.set(r.msgId, `flip-${i}`);
    }
    await masterTransport.commitOffset('broker-a', { group: 'CG', topic: TOPIC, queueId: 1, offset: 7 });
    // the first connection's stream: a 42-byte welcome frame, a 21-byte DATA header, then records
    proxy.corruptNextConnection(200);
    // no --topics: the slave copies the master's topic configs and offsets
    const slave = startSlave(path.join(dirs.dir, 'flip', 'slave'), proxy.address, [
      '--slave-sync-interval-ms',
      '200',
    ]);
    await slave.waitFor(/link to master .* failed \(STORE_CORRUPT\)/);
    expect(proxy.corrupted).toBe(1);
    const slaveTransport = transportTo(await slave.address());
    await until('the slave holding every message, undamaged', async () => {
      const held = await readAll(slaveTransport, 'broker-a').catch(() => new Map<string, string>());
      return held.size === sent.size && [...sent].every(([id, body]) => held.get(id) === body);
    });
    await until(
      'the offset copied',
      async () =>
        (await slaveTransport.queryOffset('broker-a', { group: 'CG', topic: TOPIC, queueId: 1 })) === 7,
    );

    const slaveProducer = new Producer({
      group: 'PG',
      transport: slaveTransport,
      retryTimesWhenSendFailed: 0,
    });
    await slaveProducer.start();
    await expect(slaveProducer.send({ topic: TOPIC, body: 'refused' })).rejects.toMatchObject({
      message: expect.stringMatching(/is a slave/),
    });
    await slaveProducer.shutdown();
    await producer.shutdown();
  });

  test('admin cluster list shows master and slave under one name, with the slave count and lag', async () => {
    run = 30;
    const ns = new CliProcess('namesrv', ['namesrv', '--port', '0']);
    processes.push(ns);
    const namesrv = await ns.address();
    const master = startMaster(path.join(dirs.dir, 'list', 'master'), 'ASYNC_MASTER', ['--namesrv', namesrv]);
    const slave = startSlave(path.join(dirs.dir, 'list', 'slave'), `127.0.0.1:${await haPortOf(master)}`, [
      '--topics',
      `${TOPIC}:${QUEUES}`,
      '--namesrv',
      namesrv,
    ]);
    await master.waitFor(/registered with 1 of 1 name servers/);
    await slave.waitFor(/registered with 1 of 1 name servers/);
    await slave.waitFor(/replication: joined master/);
    const list = async (): Promise<
      Array<{ brokerName: string; brokerId: number; slaves?: number; lagBytes?: number }>
    > => {
      const p = new CliProcess('admin', ['admin', 'cluster', 'list', '--namesrv', namesrv, '--json']);
      processes.push(p);
      expect(await p.exited).toBe(0);
      return (JSON.parse(p.output) as { clusters: Array<{ brokers: [] }> }).clusters.flatMap(
        (c) => c.brokers,
      );
    };
    await until('the master counting its slave', async () => (await list()).some((b) => b.slaves === 1));
    const brokers = await list();
    expect(brokers).toEqual([
      expect.objectContaining({ brokerName: 'broker-a', brokerId: 0, slaves: 1, lagBytes: 0 }),
      expect.objectContaining({ brokerName: 'broker-a', brokerId: 1, lagBytes: 0 }),
    ]);
    const table = new CliProcess('admin', ['admin', 'cluster', 'list', '--namesrv', namesrv]);
    processes.push(table);
    expect(await table.exited).toBe(0);
    expect(table.output).toMatch(/slaves\s+lag/);
  });

  test('bad role options fail at bootstrap with the fix named', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--role', 'SLAVE', '--master-address', '127.0.0.1:1'], /a SLAVE needs --broker-id 1 or more/],
      [['--role', 'SLAVE', '--broker-id', '1'], /a SLAVE needs --master-address/],
      [['--role', 'SYNC_MASTER', '--broker-id', '2'], /has --broker-id 0/],
      [['--role', 'MASTER'], /--role must be one of ASYNC_MASTER, SYNC_MASTER, SLAVE/],
      [['--master-address', '127.0.0.1:1'], /--master-address is a SLAVE's option/],
    ];
    for (const [args, message] of cases) {
      const p = new CliProcess('bad', [
        'broker',
        '--store-dir',
        path.join(dirs.dir, 'bad'),
        '--port',
        '0',
        ...args,
      ]);
      processes.push(p);
      expect(await p.exited).not.toBe(0);
      expect(p.output).toMatch(message);
    }
  });
});
