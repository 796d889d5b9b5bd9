import { UseInterceptors } from '@nestjs/common';
import { EventPattern, MessagePattern } from '@nestjs/microservices';
import { RocketError, type MessageView } from '@rocketnest/core-broker';
import { RocketFailureCapture, type RocketDeadLetterMatcher } from './rocket-failure';
import { ROCKET_TRANSPORT } from './rocket.constants';

/** One instance for every handler: it keeps no state of its own. */
const FAILURE_CAPTURE = new RocketFailureCapture();

/** Turns a consumed message into the handler's payload. */
export type RocketDeserializer = (message: MessageView) => unknown;

/** Options of one `@RocketListener`; those about the consumer must agree across the listeners of a group. */
export interface RocketListenerOptions {
  /** Consumer group of this listener. Default: the server's `group` option. (rocketmq-spring `consumerGroup`) */
  group?: string;
  /** SQL92 filter on user properties (and `TAGS`) instead of a tag expression. (rocketmq-spring `selectorType = SQL92`) */
  sql?: string;
  /** Default `CLUSTERING`: the group shares the messages. `BROADCASTING`: every instance gets every message. (RocketMQ `messageModel`) */
  messageModel?: 'CLUSTERING' | 'BROADCASTING';
  /** Default `CONCURRENTLY`. `ORDERLY`: per queue one message at a time, so each message group keeps its order. (rocketmq-spring `consumeMode`) */
  consumeMode?: 'CONCURRENTLY' | 'ORDERLY';
  /** Default `push` (PushConsumer, queue-level balancing). `simple`: pop consumption with an invisible time (SimpleConsumer). */
  consumerType?: 'push' | 'simple';
  /** Handler calls at once for the group. Default 20. (RocketMQ `consumeThreadMax`) */
  concurrency?: number;
  /** Retries before the dead-letter queue (push). Default 16. (RocketMQ `maxReconsumeTimes`) */
  maxReconsumeTimes?: number;
  /** Pop consumption: how long a received message stays invisible to the group, ms (10 s – 12 h). Default 60 000. (RocketMQ `invisibleDuration`) */
  invisibleTimeMs?: number;
  /** Redeliver a failed message after this many ms instead of the broker's next backoff level. (RocketMQ `delayLevelWhenNextConsume`) */
  retryDelayMs?: number;
  /** Settle messages with `ctx.ack()` / `ctx.nack(delayMs?)` instead of by resolving or throwing. */
  manualAck?: boolean;
  /** Hand the handler the raw body (`Buffer`) instead of parsed JSON. */
  raw?: boolean;
  /** Custom payload decoding (wins over `raw`). Default: the server's deserializer, else JSON. */
  deserializer?: RocketDeserializer;
  /** Request-reply (`@MessagePattern` semantics): the handler's result answers `RocketClient.send()`. */
  reply?: boolean;
  /**
   * Failures that go to the dead-letter queue at once, without retries: error classes or tests on
   * the error. Default: the server's `deadLetterOn`, else `NonRetriableError` and a failed
   * validation (`BadRequestException`, as `ValidationPipe` throws). `[]` retries every failure.
   * (RocketMQ `delayLevelWhenNextConsume = -1`)
   */
  deadLetterOn?: readonly RocketDeadLetterMatcher[];
}

/** What `@RocketListener` records in the handler's pattern extras. */
export interface RocketListenerMetadata {
  topic: string;
  /** Tag expression; `*` when `sql` is set. */
  tag: string;
  options: RocketListenerOptions;
  /** `Class.method`, to name handlers in errors. */
  handlerName: string;
}

/** Key of {@link RocketListenerMetadata} in the pattern extras. */
export const ROCKET_LISTENER_EXTRAS = 'rocketListener';

/** A declared listener as the method carries it, so providers' listeners can be found without Nest's internals. */
export interface RocketListenerDeclaration {
  pattern: string;
  metadata: RocketListenerMetadata;
  isEvent: boolean;
}

/** Metadata key of the {@link RocketListenerDeclaration}s on a listener method. */
export const ROCKET_LISTENER_METHOD = 'rocketnest:listener';

/**
 * Declares a RocketNest message handler on a controller method: messages of `topic` whose tag
 * matches `tag` (a tag expression, `*` by default; or `options.sql`), consumed by `options.group`.
 * Built on Nest's `@EventPattern` (or `@MessagePattern` with `reply: true`) with the
 * {@link ROCKET_TRANSPORT} id, so pipes, guards, interceptors and filters apply, and other transports
 * of the app ignore the handler. Listeners of one group and topic share one subscription; see the
 * README for what may be combined.
 */
export function RocketListener(topic: string, tag?: string, options?: RocketListenerOptions): MethodDecorator;
export function RocketListener(topic: string, options?: RocketListenerOptions): MethodDecorator;
export function RocketListener(
  topic: string,
  tagOrOptions?: string | RocketListenerOptions,
  maybeOptions?: RocketListenerOptions,
): MethodDecorator {
  const explicitTag = typeof tagOrOptions === 'string' ? tagOrOptions : undefined;
  const options = { ...(typeof tagOrOptions === 'object' ? tagOrOptions : maybeOptions) };
  if (typeof topic !== 'string' || topic.trim() === '') {
    throw new RocketError('INVALID_ARGUMENT', '@RocketListener needs a topic');
  }
  if (options.sql !== undefined && explicitTag !== undefined && explicitTag.trim() !== '*') {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `@RocketListener("${topic}") takes a tag expression or options.sql, not both`,
    );
  }
  const tag = explicitTag === undefined || explicitTag.trim() === '' ? '*' : explicitTag.trim();
  return (target, key, descriptor) => {
    const owner = typeof target === 'function' ? target.name : target.constructor.name;
    const handlerName = `${owner}.${String(key)}`;
    const metadata: RocketListenerMetadata = { topic, tag, options, handlerName };
    // one Nest pattern per declaration: Nest never merges two listeners, the server plans them
    const pattern = `rocket:${handlerName}:${topic}:${options.sql ?? tag}`;
    const extras = { [ROCKET_LISTENER_EXTRAS]: metadata };
    const decorate = options.reply
      ? MessagePattern(pattern, ROCKET_TRANSPORT, extras)
      : EventPattern(pattern, ROCKET_TRANSPORT, extras);
    decorate(target, key, descriptor as never);
    const declared = (Reflect.getMetadata(ROCKET_LISTENER_METHOD, descriptor.value as object) ??
      []) as RocketListenerDeclaration[];
    Reflect.defineMetadata(
      ROCKET_LISTENER_METHOD,
      [...declared, { pattern, metadata, isEvent: !options.reply }],
      descriptor.value as object,
    );
    // innermost interceptor: keeps the handler's real error for the server's log and dead-letter decision
    UseInterceptors(FAILURE_CAPTURE)(target, key, descriptor as never);
  };
}
