import 'reflect-metadata';
import { type INestApplication } from '@nestjs/common';
import { Broker, InProcessTransport, MemoryStore } from '@rocketnest/core-broker/broker';
import { AppModule } from '../src/app.module';
import { BillingService } from '../src/billing.service';
import { createApp } from '../src/main';

// The app started for real (HTTP on a port, RocketServer consuming) against an embedded broker
// (RocketModule's own, and one the test builds from @rocketnest/core-broker/broker), and, when
// ROCKETNEST_BROKER names one, against a standalone `rocketnest broker` process.
const ownBroker = (async () => {
  const store = await MemoryStore.create();
  const broker = await Broker.start({ store });
  broker.createTopic({ topic: 'orders' });
  broker.createTopic({ topic: 'RocketNestReply' });
  return { store, broker, transport: new InProcessTransport(broker) };
})();

const modes: Array<[string, () => Promise<Parameters<typeof AppModule.register>[0]>]> = [
  ['an embedded broker', async () => ({ embedded: { topics: ['orders'] } })],
  ['a broker of its own', async () => ({ transport: (await ownBroker).transport })],
];
if (process.env.ROCKETNEST_BROKER)
  modes.push([
    'the standalone broker',
    async () => ({ brokers: { 'broker-a': process.env.ROCKETNEST_BROKER! } }),
  ]);

afterAll(async () => {
  const { broker, store } = await ownBroker;
  await broker.close();
  await store.close();
});

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(modes)('the app against %s', (_name, connection) => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await createApp(AppModule.register(await connection()));
    await app.listen(0, '127.0.0.1');
  });

  afterAll(async () => {
    await app.close();
  });

  it('POST /orders publishes and the listener charges the order', async () => {
    const id = `o-${process.pid}-${Date.now()}`;
    const response = await fetch(`${await app.getUrl()}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, amount: 5 }),
    });
    expect(response.status).toBe(201);
    expect((await response.json()).msgId).toEqual(expect.any(String));
    await until(`order ${id} is charged`, () => app.get(BillingService).charged.includes(id));
  });
});
