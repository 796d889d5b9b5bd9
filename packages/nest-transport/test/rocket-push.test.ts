import 'reflect-metadata';
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { PushServer, createPushClient, type PushClient } from '@rocketnest/core-broker/push';
import { RocketModule, RocketPushModule, RocketTemplate } from '../src';
import { waitFor } from './support/wait';

@Injectable()
class Orders {
  constructor(readonly rocket: RocketTemplate) {}
}

@Module({
  imports: [
    RocketModule.forRoot({ embedded: { topics: ['orders', 'secrets'] } }),
    RocketPushModule.forRootAsync({
      useFactory: () => ({
        // a subscription is allowed to "orders" only
        authorize: (_request, { topic }) => (topic === 'orders' ? true : { reason: 'not yours' }),
      }),
    }),
  ],
  providers: [Orders],
})
class PushAppModule {}

describe('RocketPushModule', () => {
  let app: INestApplication;
  let url: string;
  const clients: PushClient[] = [];

  beforeEach(async () => {
    app = await NestFactory.create(PushAppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
    url = `http://127.0.0.1:${address.port}`;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await app.close();
  });

  test('pushes what RocketTemplate sends to a WebSocket subscriber of the app, and serves the client module', async () => {
    const received: Array<{ msgId: string; body: unknown; tag: string | undefined }> = [];
    const client = createPushClient(`${url.replace('http', 'ws')}/push`);
    clients.push(client);
    client.subscribe('orders', { tag: 'created', from: 'latest' }, (m) =>
      received.push({ msgId: m.msgId, body: m.body, tag: m.tag }),
    );
    await waitFor(() => app.get(PushServer).metrics().subscriptions === 1, 'subscribed');
    const rocket = app.get(Orders).rocket;
    const sent = await rocket.send('orders:created', { id: 7 });
    await rocket.send('orders:paid', { id: 7 });
    await waitFor(() => received.length === 1, 'pushed');
    expect(received).toEqual([{ msgId: sent.msgId, body: '{"id":7}', tag: 'created' }]);

    const script = await fetch(`${url}/push/client.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(await script.text()).toContain('class PushClient');
    // the app's own routes still answer (404 from Nest, not from the push server)
    expect((await fetch(`${url}/nothing-here`)).status).toBe(404);
  });

  test("the authorize hook from the module's options refuses a topic", async () => {
    const errors: string[] = [];
    const client = createPushClient(`${url.replace('http', 'ws')}/push`);
    clients.push(client);
    client.onError((e) => errors.push(`${e.code}: ${e.message}`));
    client.subscribe('secrets', {}, () => undefined);
    await waitFor(() => errors.length > 0, 'refused');
    expect(errors[0]).toBe('permission_denied: not yours');
  });

  test('app.close() closes push connections with the reconnect code, and returns', async () => {
    const closes: number[] = [];
    const client = createPushClient(`${url.replace('http', 'ws')}/push`);
    clients.push(client);
    client.subscribe('orders', {}, () => undefined);
    await waitFor(() => app.get(PushServer).metrics().connections === 1, 'connected');
    const push = app.get(PushServer);
    push.on('push.connection.close', (e) => closes.push(e.code));
    await app.close();
    expect(closes).toEqual([4000]);
  });
});
