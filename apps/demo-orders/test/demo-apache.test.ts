// The demo on a real Apache RocketMQ 5 (`pnpm demo:apache`): one cluster for the file, started by
// the demo's own launcher (apache-cluster.ts → tools/apache-rocketmq.sh) with its typed topics; both
// services on it through the Apache driver; the smoke flows of `pnpm demo:smoke` over HTTP, and the
// live page's push channel with the Node push client.
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createPushClient, PushServer, type PushMessage } from '@rocketnest/core-broker/push';
import { startApacheCluster, type ApacheCluster } from '../src/apache-cluster';
import { TEST_CARDS } from '../src/contracts';
import { DemoConfigError, demoConfigFromEnv } from '../src/demo-config';
import { startDemo, type RunningDemo } from '../src/demo-app';
import { runSmokeChecks } from '../src/smoke-checks';
import { testDemoConfig } from './support/demo-test-app';

/** Apache's delayed messages have 1 s timer precision, and the machine is loaded: a generous wait. */
const SMOKE_WAIT_MS = 60_000;
const ORDER_TIMEOUT_MS = 3_000;

let dataDir: string;
let cluster: ApacheCluster | undefined;
let demo: RunningDemo | undefined;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-orders-apache-'));
  cluster = await startApacheCluster(path.join(dataDir, 'apache'));
}, 320_000);

afterAll(async () => {
  await demo?.close();
  await cluster?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

test('paid, failed and timed-out orders and an external note, on Apache RocketMQ; the live page follows them', async () => {
  demo = await startDemo(
    testDemoConfig(dataDir, { apacheProxy: cluster!.proxy, orderTimeoutMs: ORDER_TIMEOUT_MS }),
    { logger: ['error', 'warn'] },
  );
  // the live page's channel: the order service's push server reads Apache through its driver
  const client = createPushClient(`${demo.url.replace('http', 'ws')}/push`);
  const pushed: PushMessage[] = [];
  try {
    client.subscribe('orders', {}, (m) => pushed.push(m));
    const push = demo.orderApp.get(PushServer);
    const deadline = Date.now() + SMOKE_WAIT_MS;
    while (push.metrics().subscriptions < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(push.metrics().subscriptions).toBe(1);

    const passed: string[] = [];
    await runSmokeChecks(demo.url, {
      orderTimeoutMs: ORDER_TIMEOUT_MS,
      waitMs: SMOKE_WAIT_MS,
      externalEventsToken: 'test-token',
      log: (line) => passed.push(line),
    });
    expect(passed).toHaveLength(6);
    const orders = (await (await fetch(`${demo.url}/orders`)).json()) as Array<{
      id: string;
      status: string;
    }>;
    expect(orders.map((o) => o.status).sort()).toEqual(['cancelled', 'failed', 'paid']);
    // every order's `created` and its outcome reached the page's subscription
    const until = Date.now() + SMOKE_WAIT_MS;
    const seen = (): Set<string> =>
      new Set(pushed.map((m) => `${JSON.parse(m.body as string).orderId}/${m.tag}`));
    const expected = orders.flatMap((o) => [`${o.id}/created`, `${o.id}/${o.status}`]);
    while (!expected.every((e) => seen().has(e)) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    expect([...seen()].filter((e) => expected.includes(e)).sort()).toEqual([...expected].sort());
    expect(pushed[0]!.position).toMatch(/^F1;/);
  } finally {
    client.close();
  }
  await demo.close();
  demo = undefined;
  expect(fs.existsSync(path.join(dataDir, 'broker'))).toBe(false); // no embedded broker was started
}, 240_000);

test('ROCKETMQ_PROXY is validated and excludes ROCKETNEST_NAMESRV', () => {
  expect(demoConfigFromEnv({ ROCKETMQ_PROXY: '127.0.0.1:8081' }).apacheProxy).toBe('127.0.0.1:8081');
  expect(() => demoConfigFromEnv({ ROCKETMQ_PROXY: 'proxy' })).toThrow(/ROCKETMQ_PROXY: expected host:port/);
  expect(() => demoConfigFromEnv({ ROCKETMQ_PROXY: 'a:8081', ROCKETNEST_NAMESRV: 'b:9876' })).toThrow(
    DemoConfigError,
  );
  expect(TEST_CARDS.NO_ANSWER).toHaveLength(16);
});
