import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { SqliteOutbox } from '@rocketnest/core-broker/outbox';
import { RocketOutbox } from '@rocketnest/nest-transport';
import { TestBroker } from '@rocketnest/testing';
import { RocketTestingModule, rocketTestServer } from '@rocketnest/testing/nest';
import type { AddressInfo } from 'node:net';
import { DEMO_TOPICS } from '../../src/contracts';
import type { DemoConfig } from '../../src/demo-config';
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
  http<T = HttpBody>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; headers: Headers }>;
  /** Waits until the outbox has no pending row and every consumer is drained (time does not move). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** The order service's outbox table (row counts, for tests). */
export function sqliteOutbox(app: INestApplication): SqliteOutbox {
  return app.get(RocketOutbox).outbox as SqliteOutbox;
}

/** The external events token of the test app. */
export const TEST_EXTERNAL_TOKEN = 'test-external-token';
/** Bound on {@link DemoTestApp.settle}. */
const SETTLE_TIMEOUT_MS = 5_000;

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
        externalEventsToken: TEST_EXTERNAL_TOKEN,
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
  const tb = app.get(TestBroker);
  const outbox = sqliteOutbox(app);
  return {
    app,
    tb,
    url,
    async settle() {
      const deadline = Date.now() + SETTLE_TIMEOUT_MS;
      for (;;) {
        // The outbox wakes its relay after add() with a 0 ms timer on the injected clock; on the
        // virtual clock that timer fires when the test lets due timers run, without moving time.
        await tb.clock.advance(0);
        await tb.drain();
        if (outbox.counts().pending === 0) {
          await tb.clock.advance(0);
          await tb.drain();
          if (outbox.counts().pending === 0) return;
        }
        if (Date.now() > deadline) {
          throw new Error(
            `settle: ${outbox.counts().pending} outbox rows still pending after ${SETTLE_TIMEOUT_MS} ms`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async http<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          connection: 'close',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await response.text();
      return {
        status: response.status,
        body: (text ? JSON.parse(text) : undefined) as T,
        headers: response.headers,
      };
    },
    close: () => app.close(),
  };
}

/** A demo configuration for tests: loopback, any free port, a 2 s order timeout, no payment failures. */
export function testDemoConfig(dataDir: string, overrides: Partial<DemoConfig> = {}): DemoConfig {
  return {
    port: 0,
    host: '127.0.0.1',
    dataDir,
    orderTimeoutMs: 2_000,
    paymentFailureRate: 0,
    externalEventsToken: 'test-token',
    nameServers: undefined,
    ...overrides,
  };
}
