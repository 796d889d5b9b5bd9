import type { RequestHandler } from 'express';
import type * as http from 'node:http';
import { PushServer, type PushServerOptions } from '@rocketnest/core-broker/push';

/**
 * The push channel (docs/push.md) on an Express app: the middleware serves the browser client
 * module at `<path>/client.js`; `upgrade(server)` takes the WebSocket upgrades at `path` on the
 * HTTP server `app.listen()` returned. Call `close()` before closing that server: its open
 * WebSockets would otherwise keep `server.close()` from finishing.
 */
export interface RocketPushMiddleware extends RequestHandler {
  /** The push server (metrics, events). */
  readonly push: PushServer;
  /** Answers WebSocket upgrades at the push path on `server`. */
  upgrade(server: http.Server): this;
  /** Closes every push connection (code 4000: reconnect) and stops reading the broker. Idempotent. */
  close(): Promise<void>;
}

/**
 * Builds the push server from its options: a `transport` (RocketNest) or a `driver` (e.g.
 * `new ApacheDriver({ endpoints })` for Apache RocketMQ 5, which `close()` leaves open), and the
 * required `authorize` hook.
 */
export function rocketPush(options: PushServerOptions): RocketPushMiddleware {
  const push = new PushServer(options);
  const middleware: RequestHandler = (req, res, next) => {
    if (!push.handleRequest(req, res)) next();
  };
  return Object.assign(middleware, {
    push,
    upgrade(this: RocketPushMiddleware, server: http.Server) {
      server.on('upgrade', (request: http.IncomingMessage, socket, head: Buffer) => {
        // another path is another upgrade handler's business; with none, the socket is refused
        if (!push.handleUpgrade(request, socket, head) && server.listenerCount('upgrade') === 1)
          socket.destroy();
      });
      return this;
    },
    close: () => push.close(),
  }) as RocketPushMiddleware;
}
