import { SetMetadata } from '@nestjs/common';
import { RocketError } from '@rocketnest/core-broker';
import { ROCKET_TRANSACTION_LISTENER } from './rocket.constants';

/** What a local transaction or a check-back answers. (RocketMQ `LocalTransactionState` / rocketmq-spring `RocketMQLocalTransactionState`) */
export const RocketTransactionState = {
  COMMIT: 'COMMIT',
  ROLLBACK: 'ROLLBACK',
  UNKNOWN: 'UNKNOWN',
} as const;
export type RocketTransactionState = (typeof RocketTransactionState)[keyof typeof RocketTransactionState];

/** The transactional message as the listener sees it. */
export interface RocketTransactionMessage {
  topic: string;
  tag: string | undefined;
  keys: readonly string[];
  properties: Readonly<Record<string, string>>;
  body: Buffer;
  /** The body parsed as JSON; the `body` itself when it is not JSON. */
  payload: unknown;
  /** Id of the half message and of the transaction. */
  transactionId: string;
  /** Check-backs only: 1 on the first. */
  checkTimes?: number;
}

/**
 * A provider that runs local transactions for `RocketTemplate.sendInTransaction` and answers the
 * broker's check-backs of transactions left UNKNOWN. (rocketmq-spring `RocketMQLocalTransactionListener`)
 */
export interface RocketLocalTransactionListener {
  /** Runs the local transaction of `message`; a throw counts as UNKNOWN (the broker checks back). */
  executeLocalTransaction(
    message: RocketTransactionMessage,
    arg: unknown,
  ): RocketTransactionState | Promise<RocketTransactionState>;
  /** Says how the transaction of `message` ended; a throw counts as UNKNOWN (asked again later). */
  checkLocalTransaction(
    message: RocketTransactionMessage,
  ): RocketTransactionState | Promise<RocketTransactionState>;
}

export interface RocketTransactionListenerOptions {
  /** The transaction producer's group; check-backs go to a member of it. (RocketMQ `producerGroup`) */
  producerGroup: string;
  /** Topics routed and heartbeated at start, so a restarted app answers check-backs before it sends. */
  topics?: readonly string[];
}

/**
 * Marks a provider (also `@Injectable()`) implementing {@link RocketLocalTransactionListener} as the
 * transaction listener of `producerGroup`: `RocketModule` starts a transaction producer for it.
 * (rocketmq-spring `@RocketMQTransactionListener`)
 */
export function RocketTransactionListener(options: RocketTransactionListenerOptions): ClassDecorator {
  if (!options || typeof options.producerGroup !== 'string' || options.producerGroup === '') {
    throw new RocketError('INVALID_ARGUMENT', '@RocketTransactionListener needs { producerGroup }');
  }
  return SetMetadata(ROCKET_TRANSACTION_LISTENER, { ...options });
}
