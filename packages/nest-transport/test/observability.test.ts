/**
 * Issue 20 #2: the Nest side of observability — a `@nestjs/terminus` health indicator for the
 * connection, and opt-in client metrics (prom-client) counted against known traffic.
 */
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Producer } from '@rocketnest/core-broker';
import { Registry } from 'prom-client';
import {
  NonRetriableError,
  RocketContext,
  RocketHealthIndicator,
  RocketListener,
  RocketMetrics,
  RocketModule,
  type RocketModuleOptions,
} from '../src';
import { startTestBroker, type TestBroker } from './support/embedded-broker';
import { startRocketMicroservice } from './support/nest-app';
import { waitFor } from './support/wait';

let tb: TestBroker;
beforeAll(async () => {
  tb = await startTestBroker(['metered']);
});
afterAll(async () => {
  await tb.close();
});

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly rocket: RocketHealthIndicator,
  ) {}
  @Get('health')
  check() {
    return this.health.check([() => this.rocket.isHealthy('rocketnest', { timeoutMs: 1000 })]);
  }
}

async function healthOf(options: RocketModuleOptions) {
  @Module({
    imports: [TerminusModule.forRoot({ logger: false }), RocketModule.forRoot(options)],
    controllers: [HealthController],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  try {
    return await app
      .get(HealthController)
      .check()
      .then(
        (r) => ({ ok: true, result: r as unknown }),
        (e: { getResponse?: () => unknown }) => ({ ok: false, result: e.getResponse?.() }),
      );
  } finally {
    await app.close();
  }
}

describe('RocketHealthIndicator with @nestjs/terminus', () => {
  it('is up while a broker answers, and names it', async () => {
    const got = await healthOf({ transport: tb.transport });
    expect(got).toEqual({
      ok: true,
      result: expect.objectContaining({
        status: 'ok',
        details: { rocketnest: expect.objectContaining({ status: 'up', brokers: ['broker-a'] }) },
      }),
    });
  });

  it('is down with the reason when no broker answers', async () => {
    // a port nothing listens on: connections are refused
    const got = await healthOf({ brokers: { 'broker-a': '127.0.0.1:1' } });
    expect(got.ok).toBe(false);
    expect(got.result).toMatchObject({
      status: 'error',
      error: { rocketnest: { status: 'down', message: expect.any(String) } },
    });
  });
});

describe('RocketMetrics', () => {
  it('counts sends, handler runs, failures, retries and dead letters by topic, tag and group', async () => {
    const registry = new Registry();
    const metrics = new RocketMetrics({ registry });
    const calls: string[] = [];
    @Controller()
    class Metered {
      @RocketListener('metered', 'ok', { group: 'metered-group' })
      onOk() {
        calls.push('ok');
      }
      @RocketListener('metered', 'flaky', { group: 'metered-group', retryDelayMs: 50 })
      onFlaky(@Payload() _body: unknown, @Ctx() ctx: RocketContext) {
        calls.push(`flaky@${ctx.getReconsumeTimes()}`);
        if (ctx.getReconsumeTimes() === 0) throw new Error('first time fails');
      }
      @RocketListener('metered', 'bad', { group: 'metered-group' })
      onBad() {
        calls.push('bad');
        throw new NonRetriableError('never works');
      }
    }
    const { app, server } = await startRocketMicroservice([Metered], {
      transport: tb.transport,
      consumer: { consumeFromWhere: 'FIRST_OFFSET', suspendTimeoutMs: 200 },
      metrics,
    });
    const deadLettered: string[] = [];
    server.on('consumer.dead-lettered', ({ msgId }) => deadLettered.push(msgId));
    const producer = new Producer({ group: 'metered-producer', transport: tb.transport });
    metrics.observeProducer(producer);
    await producer.start();
    try {
      for (const tag of ['ok', 'flaky', 'bad']) await producer.send({ topic: 'metered', tag, body: '{}' });
      await waitFor(
        () => deadLettered.length === 1 && calls.includes('flaky@1'),
        'the retry and the dead letter',
      );
      const json = await registry.getMetricsAsJSON();
      const value = (name: string, labels: Record<string, string>, suffix = ''): number | undefined =>
        json
          .find((m) => m.name === name)
          ?.values.find(
            (v) =>
              (suffix === '' || (v as { metricName?: string }).metricName === `${name}${suffix}`) &&
              Object.entries(labels).every(([k, l]) => v.labels[k] === l),
          )?.value;
      const at = (tag: string) => ({ topic: 'metered', tag, group: 'metered-group' });
      expect(value('rocketnest_client_send_duration_seconds', { topic: 'metered' }, '_count')).toBe(3);
      expect(value('rocketnest_client_handler_duration_seconds', at('ok'), '_count')).toBe(1);
      expect(value('rocketnest_client_handler_duration_seconds', at('flaky'), '_count')).toBe(2);
      expect(value('rocketnest_client_handler_duration_seconds', at('bad'), '_count')).toBe(1);
      expect(value('rocketnest_client_handler_failures_total', at('flaky'))).toBe(1);
      expect(value('rocketnest_client_handler_failures_total', at('bad'))).toBe(1);
      expect(value('rocketnest_client_handler_failures_total', at('ok'))).toBeUndefined();
      expect(value('rocketnest_client_retries_total', at('flaky'))).toBe(1);
      expect(value('rocketnest_client_retries_total', at('bad'))).toBeUndefined();
      expect(value('rocketnest_client_dead_letters_total', at('bad'))).toBe(1);
      expect(value('rocketnest_client_send_failures_total', { topic: 'metered' })).toBeUndefined();
    } finally {
      await producer.shutdown();
      await app.close();
    }
  });
});
