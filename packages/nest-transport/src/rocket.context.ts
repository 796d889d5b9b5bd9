import type { ArgumentsHost } from '@nestjs/common';
import { BaseRpcContext } from '@nestjs/microservices';
import { RocketError, type MessageView } from '@rocketnest/core-broker';

/** What happens to a message of a `manualAck` listener, decided through its context. */
export type RocketAckDecision = { kind: 'ack' } | { kind: 'nack'; delayMs: number | undefined };

/** Per-delivery facts that are not in the message itself. */
export interface RocketDelivery {
  consumerGroup: string;
  brokerName: string;
  /** Whether the listener settles the message itself (`ctx.ack()` / `ctx.nack()`). */
  manualAck: boolean;
  /** Pop consumption: 1 on the first delivery. Push consumption: `reconsumeTimes + 1`. */
  deliveryAttempt: number;
}

/**
 * The context of a RocketNest message handler (`@Ctx() ctx: RocketContext`): the message's id,
 * topic, tag, keys, properties, message group, queue, offset, reconsume count and born time, and
 * manual acknowledgement for listeners declared with `manualAck: true`.
 */
export class RocketContext extends BaseRpcContext<[MessageView, RocketDelivery]> {
  private decision: RocketAckDecision | undefined;

  constructor(message: MessageView, delivery: RocketDelivery) {
    super([message, delivery]);
  }

  /** The message as consumed (body as bytes). A retried message shows its original topic. */
  getMessage(): MessageView {
    return this.args[0];
  }
  getMessageId(): string {
    return this.args[0].msgId;
  }
  getTopic(): string {
    return this.args[0].topic;
  }
  getTag(): string | undefined {
    return this.args[0].tag;
  }
  getKeys(): readonly string[] {
    return this.args[0].keys;
  }
  getProperties(): Readonly<Record<string, string>> {
    return this.args[0].properties;
  }
  getMessageGroup(): string | undefined {
    return this.args[0].messageGroup;
  }
  getQueueId(): number {
    return this.args[0].queueId;
  }
  getQueueOffset(): number {
    return this.args[0].queueOffset;
  }
  getBrokerName(): string {
    return this.args[1].brokerName;
  }
  /** Retries before this delivery (RocketMQ `reconsumeTimes`). */
  getReconsumeTimes(): number {
    return this.args[0].reconsumeTimes;
  }
  getDeliveryAttempt(): number {
    return this.args[1].deliveryAttempt;
  }
  getBornTimestampMs(): number {
    return this.args[0].bornTimestampMs;
  }
  getConsumerGroup(): string {
    return this.args[1].consumerGroup;
  }

  /** Manual mode: the message is consumed. Applied when the handler settles. */
  ack(): void {
    this.decide({ kind: 'ack' });
  }

  /**
   * Manual mode: consume the message again, after `delayMs` or the broker's next backoff
   * (RocketMQ `delayLevelWhenNextConsume`). Applied when the handler settles.
   */
  nack(delayMs?: number): void {
    if (delayMs !== undefined && (!Number.isSafeInteger(delayMs) || delayMs < 0)) {
      throw new RocketError('INVALID_ARGUMENT', `nack(delayMs) needs an integer ≥ 0; got ${delayMs}`);
    }
    this.decide({ kind: 'nack', delayMs });
  }

  /** The manual decision, if one was made. */
  getAckDecision(): RocketAckDecision | undefined {
    return this.decision;
  }

  private decide(decision: RocketAckDecision): void {
    if (!this.args[1].manualAck) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `ack()/nack() need a listener declared with { manualAck: true } (message ${this.getMessageId()})`,
      );
    }
    if (this.decision) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `message ${this.getMessageId()} was already ${this.decision.kind}ed`,
      );
    }
    this.decision = decision;
  }
}

/**
 * Whether a handler runs for a RocketNest message: pass the `ExecutionContext`/`ArgumentsHost` of a
 * guard, interceptor or filter, or a context object. Lets HTTP-only global guards skip message handlers.
 */
export function isRocketContext(hostOrContext: ArgumentsHost | unknown): boolean {
  if (hostOrContext instanceof RocketContext) return true;
  const host = hostOrContext as Partial<ArgumentsHost> | undefined;
  if (!host || typeof host.getType !== 'function' || typeof host.switchToRpc !== 'function') return false;
  return host.getType() === 'rpc' && host.switchToRpc().getContext() instanceof RocketContext;
}
