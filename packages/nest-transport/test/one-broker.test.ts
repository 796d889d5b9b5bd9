import 'reflect-metadata';
import { Controller, type INestApplication } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { isRocketError } from '@rocketnest/core-broker';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lastValueFrom } from 'rxjs';
import {
  RocketClient,
  RocketConnection,
  RocketListener,
  RocketModule,
  RocketServer,
  RocketTemplate,
} from '../src';
import { waitFor } from './support/wait';

const received: unknown[] = [];

@Controller()
class OrdersController {
  @RocketListener('orders', 'created', { group: 'billing' })
  onCreated(@Payload() order: unknown): void {
    received.push(order);
  }
}

async function hybrid(server: RocketServer): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RocketModule.forRoot({ embedded: { topics: ['orders'] } })],
    controllers: [OrdersController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.connectMicroservice({ strategy: server });
  return app;
}

describe('a second embedded broker is never started by accident', () => {
  beforeEach(() => {
    received.length = 0;
  });

  it('RocketServer given embedded next to RocketModule embedded uses the module broker: what the template sends is consumed', async () => {
    const server = new RocketServer({
      embedded: { topics: ['orders'] },
      consumer: { consumeFromWhere: 'FIRST_OFFSET' },
    });
    const app = await hybrid(server);
    await app.startAllMicroservices();
    await app.init();
    try {
      await app.get(RocketTemplate).send('orders:created', { id: 1 });
      await waitFor(() => received.length === 1, 'the listener on the module broker');
      expect(received).toEqual([{ id: 1 }]);
      const { connection } = server.unwrap<{ connection: RocketConnection }>();
      expect(connection.transport).toBe(app.get(RocketConnection).transport);
      expect(connection.broker).toBeUndefined(); // not the server's own: the module owns and closes it
    } finally {
      await app.close();
    }
  });

  it('a RocketClient given embedded sends into the module broker too', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RocketModule.forRoot({ embedded: { topics: ['orders'] } })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const client = new RocketClient({ embedded: {} });
    try {
      const sent = await lastValueFrom(client.emit<{ topic: string }>('orders:created', { id: 2 }));
      expect(sent.topic).toBe('orders');
      const broker = app.get(RocketConnection).broker!;
      let stored = 0;
      for (let q = 0; q < broker.getTopic('orders')!.writeQueueCount; q++) {
        stored += await app
          .get(RocketConnection)
          .transport.maxOffset(broker.brokerName, { topic: 'orders', queueId: q });
      }
      expect(stored).toBe(1);
    } finally {
      await client.close();
      await app.close();
    }
  });

  it('embedded options that would need another store fail listen() with a clear error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rn-one-broker-'));
    const app = await hybrid(new RocketServer({ embedded: { dir } }));
    try {
      const error = await app.startAllMicroservices().catch((e: unknown) => e);
      expect(isRocketError(error) && error.code).toBe('INVALID_OPTION');
      expect((error as Error).message).toMatch(
        /RocketServer option embedded .* would start a second broker next to RocketModule's embedded broker .*app\.get\(RocketConnection\)\.transport/,
      );
      expect(fs.readdirSync(dir)).toEqual([]); // nothing was started there
    } finally {
      await app.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without a RocketModule, RocketServer embedded still runs a broker of its own', async () => {
    const server = new RocketServer({ embedded: {} });
    await new Promise<void>((resolve, reject) =>
      server.listen((error) => (error ? reject(error) : resolve())),
    );
    try {
      expect(server.unwrap<{ connection: RocketConnection }>().connection.broker).toBeDefined();
    } finally {
      await server.close();
    }
  });
});
