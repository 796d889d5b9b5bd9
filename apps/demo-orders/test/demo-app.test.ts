import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Broker, BrokerServer, MemoryStore, NameServer } from '@rocketnest/core-broker/broker';
import { DEFAULT_REPLY_TOPIC } from '@rocketnest/nest-transport';
import { DEMO_TOPICS, TEST_CARDS } from '../src/contracts';
import { DemoConfigError, demoConfigFromEnv, type DemoConfig } from '../src/demo-config';
import { startDemo, type RunningDemo } from '../src/demo-app';
import { SmokeMismatchError, runSmokeChecks } from '../src/smoke-checks';
import { testDemoConfig } from './support/demo-test-app';

let dataDir: string;
let demo: RunningDemo | undefined;

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-orders-test-'));
});

afterEach(async () => {
  await demo?.close();
  demo = undefined;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function config(overrides: Partial<DemoConfig> = {}): DemoConfig {
  return testDemoConfig(dataDir, { ...overrides });
}

describe('the demo process (embedded broker on disk, SQLite files, real HTTP)', () => {
  test('every path passes the smoke checks; orders survive a restart on the same data directory', async () => {
    demo = await startDemo(config(), { logger: false });
    const passed: string[] = [];
    await runSmokeChecks(demo.url, {
      orderTimeoutMs: 2_000,
      externalEventsToken: 'test-token',
      log: (line) => passed.push(line),
    });
    expect(passed).toHaveLength(6);
    const before = (await (await fetch(`${demo.url}/orders`)).json()) as Array<{ status: string }>;
    expect(before.map((o) => o.status).sort()).toEqual(['cancelled', 'failed', 'paid']);
    await demo.close();

    for (const file of ['order-service.db', 'payment-service.db', 'broker']) {
      expect(fs.existsSync(path.join(dataDir, file))).toBe(true);
    }
    demo = await startDemo(config(), { logger: false });
    const after = await (await fetch(`${demo.url}/orders`)).json();
    expect(after).toEqual(before);
  });

  test('the smoke checks fail on a mismatch: an order cancelled before the timeout they expect', async () => {
    demo = await startDemo(config({ orderTimeoutMs: 1_500 }), { logger: false });
    const checks = runSmokeChecks(demo.url, { orderTimeoutMs: 10_000 });
    await expect(checks).rejects.toBeInstanceOf(SmokeMismatchError);
    await expect(checks).rejects.toThrow(/cancelled after \d+ ms, before its 10000 ms timeout/);
  });

  test('the failure rate declines ordinary cards', async () => {
    demo = await startDemo(config({ paymentFailureRate: 1 }), { logger: false });
    const placed = await fetch(`${demo.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amountCents: 100, card: '5555 5555 5555 4444' }),
    });
    expect(placed.status).toBe(201);
    const { id } = (await placed.json()) as { id: string };
    const deadline = Date.now() + 5_000;
    let order: { status: string; timeline: Array<{ detail: string }> };
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      order = (await (await fetch(`${demo.url}/orders/${id}`)).json()) as typeof order;
    } while (order.status === 'created' && Date.now() < deadline);
    expect(order.status).toBe('failed');
    expect(order.timeline[1]!.detail).toBe('insufficient funds');
  });

  test('against a cluster (ROCKETNEST_NAMESRV): both services reach the broker by name-server addresses', async () => {
    const nameServer = await NameServer.start({ host: '127.0.0.1', port: 0 });
    const store = await MemoryStore.create();
    const broker = await Broker.start({ store });
    let server: BrokerServer | undefined;
    try {
      for (const topic of [...DEMO_TOPICS, { topic: DEFAULT_REPLY_TOPIC }]) broker.createTopic(topic);
      const { host, port } = nameServer.address();
      const nameServers = [`${host}:${port}`];
      server = await BrokerServer.start({ broker, host: '127.0.0.1', port: 0, nameServers });
      demo = await startDemo(config({ nameServers }), { logger: false });
      await runSmokeChecks(demo.url, { orderTimeoutMs: 2_000, externalEventsToken: 'test-token' });
      await demo.close();
      demo = undefined;
      expect(fs.existsSync(path.join(dataDir, 'broker'))).toBe(false); // no embedded broker was started
    } finally {
      await demo?.close();
      demo = undefined;
      await server?.close();
      await broker.close();
      await store.close();
      await nameServer.close();
    }
  });

  test('configuration from the environment is validated with errors naming the variable', () => {
    expect(demoConfigFromEnv({})).toMatchObject({
      port: 3000,
      orderTimeoutMs: 15_000,
      paymentFailureRate: 0.2,
    });
    expect(demoConfigFromEnv({ ROCKETNEST_NAMESRV: '10.0.0.1:9876, 10.0.0.2:9876' }).nameServers).toEqual([
      '10.0.0.1:9876',
      '10.0.0.2:9876',
    ]);
    expect(() => demoConfigFromEnv({ PORT: 'http' })).toThrow(DemoConfigError);
    expect(() => demoConfigFromEnv({ ORDER_TIMEOUT_MS: '-5' })).toThrow(/ORDER_TIMEOUT_MS/);
    expect(() => demoConfigFromEnv({ PAYMENT_FAILURE_RATE: '2' })).toThrow(/PAYMENT_FAILURE_RATE/);
    expect(() => demoConfigFromEnv({ ROCKETNEST_NAMESRV: 'nameserver' })).toThrow(/host:port/);
    expect(TEST_CARDS.APPROVED).toHaveLength(16);
  });
});
