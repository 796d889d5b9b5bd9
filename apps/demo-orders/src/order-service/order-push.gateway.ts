import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PushServer } from '@rocketnest/core-broker';
import { RocketConnection } from '@rocketnest/nest-transport';
import type { Server } from 'node:http';
import { ORDERS_TOPIC, PAYMENTS_TOPIC } from '../contracts';
import { ORDER_SERVICE_OPTIONS, type OrderServiceOptions } from './order-service.options';

/** Where browsers connect; the client module is served at `<path>/client.js`. */
export const ORDER_PUSH_PATH = '/push';
/** The topics a browser may follow. */
export const PUSHED_TOPICS: readonly string[] = [ORDERS_TOPIC, PAYMENTS_TOPIC];

/**
 * The push channel of the order service: a `PushServer` on the same HTTP server as the Nest app
 * (WebSocket upgrades at `/push`, the browser client at `/push/client.js`), reading through the
 * app's broker connection. Browsers may follow `orders` and `payments`, nothing else.
 *
 * The demo has no users, so there is no authentication; a real service would pass
 * `jwtAuthorizer({ key })` (docs/push.md) instead of the topic check.
 */
@Injectable()
export class OrderPushGateway implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OrderPushGateway.name);
  private push: PushServer | undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly connection: RocketConnection,
    @Inject(ORDER_SERVICE_OPTIONS) private readonly options: OrderServiceOptions,
  ) {}

  /** The running push server (for metrics); undefined when disabled or not started. */
  get server(): PushServer | undefined {
    return this.push;
  }

  onApplicationBootstrap(): void {
    if (this.options.push === false) return;
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) {
      this.logger.warn('no HTTP server: the push channel is not started');
      return;
    }
    this.push = new PushServer({
      transport: this.connection.transport,
      path: ORDER_PUSH_PATH,
      authorize: (_request, { topic }) =>
        PUSHED_TOPICS.includes(topic) || { reason: `topic "${topic}" is not pushed to browsers` },
    }).attach(server);
  }

  /** Closes browser connections before Nest closes the HTTP server and the broker connection. */
  async beforeApplicationShutdown(): Promise<void> {
    const push = this.push;
    this.push = undefined;
    await push?.close();
  }
}
