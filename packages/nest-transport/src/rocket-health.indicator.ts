import { Inject, Injectable } from '@nestjs/common';
import { RocketError } from '@rocketnest/core-broker';
import { RocketConnection } from './rocket-connection';
import { DEFAULT_REPLY_TOPIC } from './rocket.constants';

/** How long a health check waits for the brokers before it reports the connection down. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 3000;

/** A `@nestjs/terminus` indicator result: the key, `up` or `down`, and what was found. */
export type RocketHealthResult<K extends string = string> = Record<
  K,
  { status: 'up'; brokers: string[] } | { status: 'down'; message: string }
>;

export interface RocketHealthCheckOptions {
  /** Topic whose route is asked for (it must exist). Default the reply topic, `RocketNestReply`. */
  topic?: string;
  /** Default {@link DEFAULT_HEALTH_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * A `@nestjs/terminus` health indicator for the app's RocketNest connection (provided by
 * `RocketModule`): up when a broker answers a route query for the topic within the timeout (and,
 * for an embedded broker, its store takes writes); down with the reason otherwise.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.rocket.isHealthy('rocketnest')]); }
 * ```
 *
 * It returns the result rather than throwing, as terminus's own `HealthIndicatorService` does; it
 * does not import terminus, which stays an optional peer dependency.
 */
@Injectable()
export class RocketHealthIndicator {
  constructor(@Inject(RocketConnection) private readonly connection: RocketConnection) {}

  async isHealthy<K extends string>(
    key: K,
    options: RocketHealthCheckOptions = {},
  ): Promise<RocketHealthResult<K>> {
    const topic = options.topic ?? DEFAULT_REPLY_TOPIC;
    const timeoutMs = options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
    const down = (message: string): RocketHealthResult<K> =>
      ({ [key]: { status: 'down', message } }) as RocketHealthResult<K>;
    const stats = this.connection.broker?.store.stats?.();
    if (stats?.diskFull) return down('the embedded broker refuses writes: its disk is full');
    let timer: NodeJS.Timeout | undefined;
    try {
      const route = await Promise.race([
        this.connection.transport.topicRoute(topic),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new RocketError('TIMEOUT', `no broker answered within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      return {
        [key]: { status: 'up', brokers: route.brokers.map((b) => b.brokerName) },
      } as RocketHealthResult<K>;
    } catch (error) {
      return down((error as Error)?.message ?? String(error));
    } finally {
      clearTimeout(timer);
    }
  }
}
