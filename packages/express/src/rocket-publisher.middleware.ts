import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Express's defaults for a route's params and query (`ParamsDictionary`, `ParsedQs`). */
type DefaultParams = Request['params'];
type DefaultQuery = Request['query'];
import { RocketError } from '@rocketnest/core-broker';
import type {
  LocalTransactionExecutor,
  ProducerMessage,
  SendResult,
  TransactionChecker,
  TransactionMessage,
  TransactionSendResult,
} from '@rocketnest/core-broker';
import { LazyProducer, LazyTransactionProducer, ServerTracker } from './lazy-producer';
import type { ProducerSource } from './lazy-producer';

/** Default producer group of the transaction producer behind `req.rocket.sendInTransaction`. */
export const DEFAULT_EXPRESS_TRANSACTION_GROUP = 'rocketnest-express-tx';

export interface RocketPublisherOptions extends ProducerSource {
  /**
   * Answers the broker's check-backs of transactions begun with `req.rocket.sendInTransaction`
   * (needs a connection option, not `producer`). Without it that method rejects with `INVALID_OPTION`.
   */
  transactionChecker?: TransactionChecker;
  /** Producer group of the transaction producer. Default `rocketnest-express-tx`. */
  transactionGroup?: string;
}

/** What handlers get as `req.rocket`. Every method sends on the one shared producer. */
export interface RocketRequestApi {
  /** Sends and resolves once a broker stored the message. */
  send(message: ProducerMessage): Promise<SendResult>;
  /** Sends a message delivered `delayMs` from now. */
  sendDelayed(message: ProducerMessage, delayMs: number): Promise<SendResult>;
  /** Sends in a FIFO message group: one group, one queue, in order. */
  sendOrderly(message: ProducerMessage, messageGroup: string): Promise<SendResult>;
  /** A transactional message: half message, `executeLocal`, then commit or rollback. */
  sendInTransaction(
    message: TransactionMessage,
    executeLocal: LocalTransactionExecutor,
  ): Promise<TransactionSendResult>;
}

declare global {
  // Express's own way to extend its Request type (the global Express namespace of its typings).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * Set by `rocketPublisher()`. Optional on every request, since Express's types cannot know
       * which routes the middleware runs before; handlers wrapped in `withRocket(…)` or
       * `publisher.handler(…)` get a `RocketRequest`, where it is present.
       */
      rocket?: RocketRequestApi;
    }
  }
}

/** A request that went through `rocketPublisher()`: `req.rocket` is there. */
export type RocketRequest<
  P = DefaultParams,
  ResBody = unknown,
  ReqBody = unknown,
  ReqQuery = DefaultQuery,
> = Request<P, ResBody, ReqBody, ReqQuery> & { rocket: RocketRequestApi };

/** A route handler that uses `req.rocket`; may be async (a rejection goes to `next(error)`). */
export type RocketHandler<
  P = DefaultParams,
  ResBody = unknown,
  ReqBody = unknown,
  ReqQuery = DefaultQuery,
> = (
  req: RocketRequest<P, ResBody, ReqBody, ReqQuery>,
  res: Response<ResBody>,
  next: NextFunction,
) => unknown;

/** The middleware, plus `close()`. */
export interface RocketPublisherMiddleware extends RequestHandler {
  /** Shuts the owned producers down after their in-flight sends. Idempotent. */
  close(): Promise<void>;
  /** The same API handlers get as `req.rocket`, for use outside a request. */
  readonly rocket: RocketRequestApi;
  /**
   * A route handler with this middleware built in: `app.post('/orders', publisher.handler(async
   * (req, res) => { await req.rocket.send(…) }))` — `req.rocket` is typed present, and is.
   */
  handler<P = DefaultParams, ResBody = unknown, ReqBody = unknown, ReqQuery = DefaultQuery>(
    handler: RocketHandler<P, ResBody, ReqBody, ReqQuery>,
  ): RequestHandler<P, ResBody, ReqBody, ReqQuery>;
}

/**
 * Types a route handler's `req.rocket` as present, for routes behind `app.use(rocketPublisher(…))`;
 * if the middleware did not run for the request, the request fails with `next(error)` saying so
 * (instead of `req.rocket` being undefined). A rejected promise goes to `next(error)` (Express 4
 * does not do that itself).
 */
export function withRocket<P = DefaultParams, ResBody = unknown, ReqBody = unknown, ReqQuery = DefaultQuery>(
  handler: RocketHandler<P, ResBody, ReqBody, ReqQuery>,
): RequestHandler<P, ResBody, ReqBody, ReqQuery> {
  return (req, res, next) => {
    if (!req.rocket) {
      next(
        new RocketError(
          'INVALID_OPTION',
          `req.rocket is missing on ${req.method} ${req.originalUrl}: install rocketPublisher() before this route (app.use(publisher)), or wrap the handler with publisher.handler(…)`,
        ),
      );
      return;
    }
    try {
      const result = handler(req as RocketRequest<P, ResBody, ReqBody, ReqQuery>, res, next);
      if (result instanceof Promise) result.catch(next);
    } catch (error) {
      next(error);
    }
  };
}

/**
 * Express middleware that gives every request `req.rocket` (send, sendDelayed, sendOrderly,
 * sendInTransaction) on one shared producer. The producer is created and started at the first
 * send, not at startup. It is shut down when the last HTTP server that served a request through
 * the middleware emits `close` (after `server.close()`) — a later request starts a new one — and
 * for good by `close()`. A producer passed as `producer` is yours: used as is, never shut down here.
 */
export function rocketPublisher(options: RocketPublisherOptions): RocketPublisherMiddleware {
  const producer = new LazyProducer(options, 'rocketPublisher');
  const transactions = new LazyTransactionProducer(
    options,
    options.transactionGroup ?? DEFAULT_EXPRESS_TRANSACTION_GROUP,
    options.transactionChecker,
    'rocketPublisher',
  );
  const rocket: RocketRequestApi = {
    send: async (message) => (await producer.get()).send(message),
    sendDelayed: async (message, delayMs) => (await producer.get()).send(message, { delayMs }),
    sendOrderly: async (message, messageGroup) => (await producer.get()).send(message, { messageGroup }),
    sendInTransaction: async (message, executeLocal) =>
      (await transactions.get()).sendInTransaction(message, executeLocal),
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= Promise.all([producer.close(), transactions.close()]).then(() => undefined);
    return closing;
  };
  // When the last HTTP server that served a request closes, the producers are shut down; a later
  // request (say, on a new server) starts them again.
  const servers = new ServerTracker(
    () => void Promise.all([producer.reset(), transactions.reset()]).catch(() => undefined),
  );
  const install = (req: Request): void => {
    req.rocket = rocket;
    servers.seen(req);
  };
  const middleware = (req: Request, _res: Response, next: NextFunction): void => {
    install(req);
    next();
  };
  const handler = <P, ResBody, ReqBody, ReqQuery>(
    fn: RocketHandler<P, ResBody, ReqBody, ReqQuery>,
  ): RequestHandler<P, ResBody, ReqBody, ReqQuery> => {
    const wrapped = withRocket(fn);
    return (req, res, next) => {
      install(req as unknown as Request);
      return wrapped(req, res, next);
    };
  };
  return Object.assign(middleware, { close, rocket, handler }) as RocketPublisherMiddleware;
}
