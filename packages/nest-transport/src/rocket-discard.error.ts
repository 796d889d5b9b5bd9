import { RpcException } from '@nestjs/microservices';

/**
 * Thrown by a listener to settle a message without a retry: it is acknowledged (not sent back, not
 * dead-lettered) and logged as discarded with its id, topic and group. Use it for messages that
 * can never succeed (unknown version, failed validation). It is an `RpcException`, so Nest's
 * exception layer hands it to the transport unchanged.
 */
export class RocketDiscard extends RpcException {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'RocketDiscard';
  }

  /** Nest's RPC exception filter passes what this returns on; returning the error itself keeps its identity. */
  override getError(): string | object {
    return this;
  }
}

/** Whether `error` (as it comes out of Nest's exception layer) is a {@link RocketDiscard}. */
export function isRocketDiscard(error: unknown): error is RocketDiscard {
  return error instanceof RocketDiscard;
}
