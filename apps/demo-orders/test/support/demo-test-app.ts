import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TestBroker } from '@rocketnest/testing';
import { RocketTestingModule, rocketTestServer } from '@rocketnest/testing/nest';
import type { AddressInfo } from 'node:net';
import { DEMO_TOPICS } from '../../src/contracts';
import type { OrderView } from '../../src/order-service/order.repository';
import { OrderServiceModule } from '../../src/order-service/order-service.module';
import { PaymentServiceModule } from '../../src/payment-service/payment-service.module';

/** What the order service answers: an order, or a Nest error body. */
export type HttpBody = OrderView & { message?: string };

export interface DemoTestApp {
  app: INestApplication;
  tb: TestBroker;
  url: string;
  /** `fetch` against the app, JSON in and out; the connection is not kept alive. */
  http<T = HttpBody>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/**
 * Both services in one Nest app on the in-memory test broker and its virtual clock, with their
 * SQLite databases in memory and the order service's HTTP API on a free loopback port.
 */
export async function startDemoTestApp(
  options: { failureRate?: number; random?: () => number; orderTimeoutMs?: number } = {},
): Promise<DemoTestApp> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      RocketTestingModule.forRoot({ topics: DEMO_TOPICS }),
      OrderServiceModule.forRoot({
        databaseFile: ':memory:',
        orderTimeoutMs: options.orderTimeoutMs ?? 15_000,
      }),
      PaymentServiceModule.forRoot({
        databaseFile: ':memory:',
        failureRate: options.failureRate ?? 0,
        ...(options.random ? { random: options.random } : {}),
      }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.connectMicroservice({ strategy: rocketTestServer(app) }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    app,
    tb: app.get(TestBroker),
    url,
    async http<T>(method: string, path: string, body?: unknown) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          connection: 'close',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
    close: () => app.close(),
  };
}
