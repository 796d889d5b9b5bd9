import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { RocketError } from '@rocketnest/core-broker';
import type {
  LocalTransactionExecutor,
  ProducerMessage,
  SendResult,
  TransactionChecker,
  TransactionMessage,
  TransactionSendResult,
  Transport,
} from '@rocketnest/core-broker';
import { LazyProducer, LazyTransactionProducer, ServerTracker } from './lazy-producer';
import type { ProducerSource } from './lazy-producer';

/** Default producer group of the transaction producer behind `req.rocket.sendInTransaction`. */
export const DEFAULT_EXPRESS_TRANSACTION_GROUP = 'rocketnest-express-tx';

export interface RocketPublisherOptions extends ProducerSource {
  /**
   * Answers the broker's check-backs of transactions begun with `req.rocket.sendInTransaction`
   * (needs `transport`). Without it that method rejects with `INVALID_OPTION`.
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
      /** Set by `rocketPublisher()`. */
      rocket?: RocketRequestApi;
    }
  }
}

/** The middleware, plus `close()`. */
export interface RocketPublisherMiddleware extends RequestHandler {
  /** Shuts the owned producers down after their in-flight sends. Idempotent. */
  close(): Promise<void>;
  /** The same API handlers get as `req.rocket`, for use outside a request. */
  readonly rocket: RocketRequestApi;
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
    {
      group: options.transactionGroup ?? DEFAULT_EXPRESS_TRANSACTION_GROUP,
      transport: options.transport as Transport,
      ...(options.transactionChecker ? { checker: options.transactionChecker } : {}),
    },
    'rocketPublisher',
  );
  const rocket: RocketRequestApi = {
    send: async (message) => (await producer.get()).send(message),
    sendDelayed: async (message, delayMs) => (await producer.get()).send(message, { delayMs }),
    sendOrderly: async (message, messageGroup) => (await producer.get()).send(message, { messageGroup }),
    sendInTransaction: async (message, executeLocal) => {
      if (!options.transport)
        throw new RocketError('INVALID_OPTION', 'rocketPublisher: sendInTransaction needs option transport');
      return (await transactions.get()).sendInTransaction(message, executeLocal);
    },
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
  const middleware = (req: Request, _res: Response, next: NextFunction): void => {
    req.rocket = rocket;
    servers.seen(req);
    next();
  };
  return Object.assign(middleware, { close, rocket });
}
