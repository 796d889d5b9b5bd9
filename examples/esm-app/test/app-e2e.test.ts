import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type INestApplication } from '@nestjs/common';
import type { RocketConnectionOptions } from '@rocketnest/nest-transport';
import { AppModule } from '../src/app.module.js';
import { BillingService } from '../src/billing.service.js';
import { createApp } from '../src/main.js';

// The app started for real (HTTP on a port, RocketServer consuming) against an embedded broker,
// and, when ROCKETNEST_BROKER names one, against a standalone `rocketnest broker` process.
const modes: Array<[string, RocketConnectionOptions]> = [
  ['an embedded broker', { embedded: { topics: ['orders'] } }],
];
if (process.env.ROCKETNEST_BROKER)
  modes.push(['the standalone broker', { brokers: { 'broker-a': process.env.ROCKETNEST_BROKER } }]);

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const [name, connection] of modes) {
  describe(`the app against ${name}`, () => {
    let app: INestApplication;

    before(async () => {
      app = await createApp(AppModule.register(connection));
      await app.listen(0, '127.0.0.1');
    });

    after(async () => {
      await app.close();
    });

    it('POST /orders publishes and the listener charges the order', async () => {
      const id = `o-${process.pid}-${Date.now()}`;
      const response = await fetch(`${await app.getUrl()}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, amount: 5 }),
      });
      assert.equal(response.status, 201);
      assert.equal(typeof ((await response.json()) as { msgId: unknown }).msgId, 'string');
      await until(`order ${id} is charged`, () => app.get(BillingService).charged.includes(id));
    });
  });
}
