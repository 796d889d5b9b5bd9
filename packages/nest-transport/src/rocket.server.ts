import { Logger } from '@nestjs/common';
import { Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import {
  ApacheDriver,
  ConsumeResult,
  isRocketError,
  type DriverDecision,
  type DriverMessage,
  type DriverProducer,
  type DriverSubscription,
  MAX_RECEIVE_COUNT,
  Producer,
  PushConsumer,
  RocketError,
  SimpleConsumer,
  type MessageView,
  type PushConsumerEvents,
  type PushConsumerOptions,
  type ReceivedMessage,
  type SimpleListener,
} from '@rocketnest/core-broker';
import { InProcessTransport } from '@rocketnest/core-broker/broker';
import {
  DEFAULT_INVISIBLE_DURATION_MS,
  messageViewOfDriverMessage as messageViewOf,
  traceProcess,
} from '@rocketnest/core-broker/internal';
import { lastValueFrom } from 'rxjs';
import { openConnection } from './embedded-registry';
import type { RocketConnection, RocketConnectionOptions } from './rocket-connection';
import type { RocketMetrics } from './rocket-metrics';
import { isRocketDiscard } from './rocket-discard.error';
import {
  DEFAULT_DEAD_LETTER_ON,
  matchesDeadLetter,
  realFailure,
  type RocketDeadLetterMatcher,
} from './rocket-failure';
import {
  ROCKET_LISTENER_EXTRAS,
  type RocketDeserializer,
  type RocketListenerMetadata,
} from './rocket-listener.decorator';
import {
  CORRELATION_ID_PROPERTY,
  DEFAULT_CONSUMER_GROUP,
  DEFAULT_POP_AWAIT_DURATION_MS,
  DEFAULT_PRODUCER_GROUP,
  DEFAULT_REPLY_TOPIC,
  REPLY_TO_PROPERTY,
  REPLY_TOPIC_PROPERTY,
  ROCKET_TRANSPORT,
} from './rocket.constants';
import { RocketContext, type RocketDelivery } from './rocket.context';
import { decodeJson, describeError, encodeBody } from './rocket-serialization';
import {
  listenerFor,
  planSubscriptions,
  type GroupPlan,
  type PlannedListener,
  type TopicPlan,
} from './subscription-plan';

/** Push-consumer tuning applied to every push consumer of the server (the rest comes from the listeners). */
export type RocketConsumerTuning = Omit<
  PushConsumerOptions,
  'group' | 'transport' | 'messageModel' | 'consumeConcurrency' | 'maxReconsumeTimes' | 'clientId'
>;

export interface RocketServerOptions extends RocketConnectionOptions {
  /** Consumer group of listeners that name none. Default `RocketNestConsumer`. (rocketmq-spring `rocketmq.consumer.group`) */
  group?: string;
  /** Producer group of replies to requests. Default `RocketNestProducer`. */
  producerGroup?: string;
  /** Topic replies are sent to (created on an embedded broker); requests naming another reply topic are not answered. Default `RocketNestReply`. */
  replyTopic?: string;
  /** Payload decoding of listeners that set none. Default: JSON (`raw: true` listeners get the `Buffer`). */
  deserializer?: RocketDeserializer;
  /** Push-consumer tuning: `consumeFromWhere`, `suspendTimeoutMs`, `rebalanceIntervalMs`, `pullBatchSize`… */
  consumer?: RocketConsumerTuning;
  /** Pop listeners: how long one receive waits, ms. Default 1000. Bounds how long `close()` waits for a receive. */
  popAwaitDurationMs?: number;
  /**
   * Failures that go to the dead-letter queue at once, without retries, for listeners that set no
   * `deadLetterOn`: error classes or tests on the error. Default {@link DEFAULT_DEAD_LETTER_ON}
   * (`NonRetriableError` and `BadRequestException`, as `ValidationPipe` throws). `[]` retries every failure.
   */
  deadLetterOn?: readonly RocketDeadLetterMatcher[];
  /** Handler metrics (duration, failures, retries, dead letters) and the reply producer's sends. Default: none. */
  metrics?: RocketMetrics;
}

/** Status of the server as `status` reports it. */
export type RocketStatus = 'connected' | 'disconnected';

/** The stack of an error, for the logger's trace argument. */
function stackOf(error: unknown): string | undefined {
  return error instanceof Error ? error.stack : undefined;
}

type Outcome = { kind: 'ack' } | { kind: 'retry'; delayMs: number | undefined } | { kind: 'dead-letter' };

type EventName = keyof PushConsumerEvents;
/** The events `on()` takes: the push consumers' instrumentation events. */
export type RocketServerEvents = { [K in EventName]: (payload: PushConsumerEvents[K]) => void };

interface PopLoop {
  consumer: SimpleConsumer;
  /** The consumer's receive loop (`SimpleConsumer.listen`), once started. */
  listener: SimpleListener | undefined;
}

/**
 * A Nest custom transport strategy on RocketNest (`createMicroservice(AppModule, { strategy: new
 * RocketServer(options) })` or `app.connectMicroservice(...)`): at `listen()` it plans the
 * `@RocketListener` handlers into consumers (one per consumer group, one subscription per group
 * and topic), starts them, and maps each handler's outcome to the broker: resolve acks, throw
 * retries with backoff and then dead-letters, `RocketDiscard` acks without retry. `close()` stops
 * the consumers (running handlers finish) and closes what the server owns.
 */
export class RocketServer
  extends Server<RocketServerEvents, RocketStatus>
  implements CustomTransportStrategy
{
  override readonly transportId = ROCKET_TRANSPORT;
  /** Handler failures come back to this transport (it retries them) rather than being logged and dropped by Nest. */
  override readonly propagatesEventHandlerErrors = true;

  private readonly log = new Logger('RocketServer');
  private connection: RocketConnection | undefined;
  private producer: Producer | undefined;
  /** With the `apache` option: the Apache RocketMQ 5 driver, its subscriptions and reply producer. */
  private driver: ApacheDriver | undefined;
  private readonly driverSubscriptions: DriverSubscription[] = [];
  private driverProducer: DriverProducer | undefined;
  private readonly pushConsumers = new Map<string, PushConsumer>();
  private readonly popLoops = new Map<string, PopLoop>();
  private readonly eventListeners: Array<[EventName, RocketServerEvents[EventName]]> = [];
  private state: 'CREATED' | 'STARTING' | 'RUNNING' | 'CLOSED' = 'CREATED';
  private closing: Promise<void> | undefined;
  private starting: Promise<void> | undefined;

  private readonly deadLetterOn: readonly RocketDeadLetterMatcher[];
  /** Problems found while the app registered listeners, reported by `listen()`. */
  private readonly registrationErrors: Error[] = [];

  constructor(private readonly options: RocketServerOptions) {
    super();
    this.deadLetterOn = options.deadLetterOn ?? DEFAULT_DEAD_LETTER_ON;
  }

  /** Makes `listen()` fail with `error` (a listener that cannot be served). Internal: used by `RocketModule`. */
  failAtListen(error: Error): void {
    this.registrationErrors.push(error);
  }

  /** What happens to a message classified as not retriable, by consumption mode. */
  private deadLetterNote(delivery: RocketDelivery, pop: boolean): string {
    return pop
      ? "redelivered after its invisible time (pop dead-letters after the broker's maxReconsumeTimes)"
      : `moved to the dead-letter queue %DLQ%${delivery.consumerGroup} without retries`;
  }

  /** Starts the consumers of every `@RocketListener`; `callback(error)` when that fails (conflicts, unknown topics…). */
  listen(callback: (error?: unknown, ...info: unknown[]) => void): void {
    this.starting ??= this.start();
    this.starting.then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  private async start(): Promise<void> {
    if (this.state !== 'CREATED') throw new RocketError('CLOSED', 'RocketServer was already started');
    this.state = 'STARTING';
    try {
      if (this.registrationErrors.length > 0) throw this.registrationErrors[0];
      const plans = planSubscriptions(this.collectListeners(), this.options.group ?? DEFAULT_CONSUMER_GROUP);
      const replyTopic = this.options.replyTopic ?? DEFAULT_REPLY_TOPIC;
      const replies = [...plans.values()].some((plan) =>
        [...plan.topics.values()].some((t) =>
          [...t.byTag.values(), ...(t.all ? [t.all] : [])].some((l) => l.metadata.options.reply),
        ),
      );
      if (this.options.apache !== undefined) {
        await this.startOnApache(plans, replies ? replyTopic : undefined);
        this.state = 'RUNNING';
        this._status$.next('connected');
        return;
      }
      this.connection = await openConnection(this.options, replyTopic, 'RocketServer');
      if (replies) {
        this.producer = new Producer({
          group: this.options.producerGroup ?? DEFAULT_PRODUCER_GROUP,
          transport: this.connection.transport,
          clock: this.connection.clock,
        });
        this.options.metrics?.observeProducer(this.producer);
        await this.producer.start();
      }
      await this.ensureTopics(plans);
      for (const plan of plans.values()) {
        if (plan.settings.consumerType === 'simple') await this.startPop(plan);
        else await this.startPush(plan);
      }
      this.state = 'RUNNING';
      this._status$.next('connected');
    } catch (error) {
      await this.shutdownAll();
      this.state = 'CLOSED';
      throw error;
    }
  }

  /**
   * Every topic a listener consumes must exist before its consumer starts (a consumer of a missing
   * topic waits quietly). On brokers in this process (embedded, test brokers) missing topics are
   * created, as RocketMQ's `autoCreateTopicEnable` does in development; on remote brokers `listen()`
   * fails with `TOPIC_NOT_FOUND` naming each missing topic, its listeners and the admin command.
   */
  private async ensureTopics(plans: Map<string, GroupPlan<MessageHandler>>): Promise<void> {
    const users = new Map<string, string[]>();
    for (const plan of plans.values()) {
      for (const topic of plan.topics.values()) {
        const names = [...topic.byTag.values(), ...(topic.all ? [topic.all] : [])].map(
          (l) => l.metadata.handlerName,
        );
        users.set(topic.topic, [...(users.get(topic.topic) ?? []), ...names]);
      }
    }
    const transport = this.connection!.transport;
    const local = transport instanceof InProcessTransport ? transport.localBrokers() : [];
    const missing: string[] = [];
    for (const topic of users.keys()) {
      if (local.length > 0) {
        if (!local.some((b) => b.getTopic(topic))) {
          for (const broker of local) broker.createTopic({ topic });
          this.log.log(
            `created topic "${topic}" on the in-process broker for ${users.get(topic)!.join(', ')}`,
          );
        }
        continue;
      }
      try {
        await transport.topicRoute(topic);
      } catch (error) {
        if (!isRocketError(error, 'TOPIC_NOT_FOUND')) throw error;
        missing.push(topic);
      }
    }
    if (missing.length > 0) {
      const connect = this.options.nameServers
        ? `--namesrv ${this.options.nameServers.join(',')}`
        : this.options.brokers
          ? `--broker ${Object.values(this.options.brokers)[0]}`
          : '--broker <host:port>';
      throw new RocketError(
        'TOPIC_NOT_FOUND',
        `listener topics missing on the brokers: ${missing
          .map((t) => `"${t}" (${users.get(t)!.join(', ')})`)
          .join(', ')}; create ${missing.length === 1 ? 'it' : 'each'}: ${missing
          .map((t) => `rocketnest admin topic create --topic ${t} ${connect}`)
          .join(' ; ')} (or start the broker with --topics ${missing.join(',')})`,
      );
    }
  }

  /** The `@RocketListener` handlers Nest registered on this server; other patterns are reported and ignored. */
  private collectListeners(): Array<PlannedListener<MessageHandler>> {
    const listeners: Array<PlannedListener<MessageHandler>> = [];
    for (const [pattern, handler] of this.getHandlers()) {
      const metadata = handler.extras?.[ROCKET_LISTENER_EXTRAS] as RocketListenerMetadata | undefined;
      if (!metadata) {
        this.log.warn(
          `pattern ${pattern} is not a @RocketListener and is ignored: declare RocketNest handlers with @RocketListener(topic, tag?, options?)`,
        );
        continue;
      }
      if (handler.next) {
        const second = (
          (handler.next as MessageHandler).extras?.[ROCKET_LISTENER_EXTRAS] as
            RocketListenerMetadata | undefined
        )?.handlerName;
        throw new RocketError(
          'INVALID_OPTION',
          `conflicting @RocketListener declarations: ${metadata.handlerName} and ${second ?? 'another handler'} were registered twice for the same pattern (is the controller in two modules?)`,
        );
      }
      listeners.push({ metadata, handler });
    }
    return listeners;
  }

  private async startPush(plan: GroupPlan<MessageHandler>): Promise<void> {
    const { group, settings, topics } = plan;
    const consumer = new PushConsumer({
      clock: this.connection!.clock,
      ...this.options.consumer,
      group,
      transport: this.connection!.transport,
      ...(settings.messageModel ? { messageModel: settings.messageModel } : {}),
      ...(settings.concurrency !== undefined ? { consumeConcurrency: settings.concurrency } : {}),
      ...(settings.maxReconsumeTimes !== undefined ? { maxReconsumeTimes: settings.maxReconsumeTimes } : {}),
    });
    for (const topic of topics.values()) consumer.subscribe(topic.topic, topic.expression);
    consumer.registerMessageListener(
      async (messages, context) => {
        for (const message of messages) {
          const topic = topics.get(message.topic);
          const listener = topic && listenerFor(topic, message.tag);
          if (!listener) {
            this.log.warn(
              `no listener for tag "${message.tag}" of msgId=${message.msgId} topic=${message.topic} group=${group}; consumed`,
            );
            continue;
          }
          const outcome = await this.consume(listener, message, {
            consumerGroup: group,
            brokerName: context.queue.brokerName,
            manualAck: listener.metadata.options.manualAck === true,
            deliveryAttempt: message.reconsumeTimes + 1,
          });
          if (outcome.kind === 'dead-letter') {
            context.deadLetter = true;
            return ConsumeResult.RECONSUME_LATER;
          }
          if (outcome.kind === 'retry') {
            if (outcome.delayMs !== undefined) {
              context.retryDelayMs = outcome.delayMs;
              context.suspendMs = outcome.delayMs;
            }
            return ConsumeResult.RECONSUME_LATER;
          }
        }
        return ConsumeResult.CONSUME_SUCCESS;
      },
      { orderly: settings.consumeMode === 'ORDERLY' },
    );
    consumer.on('consumer.dead-lettered', ({ msgId, queue }) => {
      this.options.metrics?.deadLettered(queue.topic, group, msgId);
      this.log.error(`msgId=${msgId} group=${group} moved to the dead-letter queue %DLQ%${group}`);
    });
    consumer.on('consumer.dropped', ({ msgId }) =>
      this.log.warn(`msgId=${msgId} group=${group} failed and is dropped (broadcasting does not retry)`),
    );
    consumer.on('consumer.sendback.failed', ({ msgId, error }) =>
      this.log.warn(
        `msgId=${msgId} group=${group} could not be sent back for retry (${describeError(error)}); retried locally`,
      ),
    );
    consumer.on('consumer.error', ({ stage, error }) =>
      this.log.warn(`consumer group=${group} ${stage} failed: ${describeError(error)}`),
    );
    for (const [event, callback] of this.eventListeners) consumer.on(event, callback as never);
    this.pushConsumers.set(group, consumer);
    await consumer.start();
  }

  /**
   * With the `apache` option: every listener runs on the Apache RocketMQ 5 driver, which consumes
   * message by message (receive, ack, change invisible duration, dead-letter) as the official 5.x
   * clients do, whatever `consumerType` says; one driver subscription per group and topic.
   * Broadcasting, which Apache's gRPC API lacks, fails here with `UNSUPPORTED`.
   */
  private async startOnApache(
    plans: Map<string, GroupPlan<MessageHandler>>,
    replyTopic: string | undefined,
  ): Promise<void> {
    this.driver = new ApacheDriver(this.options.apache!);
    if (replyTopic !== undefined) {
      this.driverProducer = await this.driver.createProducer({
        group: this.options.producerGroup ?? DEFAULT_PRODUCER_GROUP,
        topics: [replyTopic],
      });
    }
    for (const { group, settings, topics } of plans.values()) {
      for (const topic of topics.values()) {
        const subscription = await this.driver.subscribe({
          group,
          topic: topic.topic,
          filter: topic.expression,
          fifo: settings.consumeMode === 'ORDERLY',
          ...(settings.messageModel ? { messageModel: settings.messageModel } : {}),
          ...(settings.concurrency !== undefined ? { concurrency: settings.concurrency } : {}),
          ...(settings.maxReconsumeTimes !== undefined
            ? { maxAttempts: settings.maxReconsumeTimes + 1 }
            : {}),
          handler: (message) => this.consumeDriven(group, topic, message),
          onError: (error, stage) => {
            if (stage !== 'handler') {
              this.log.warn(`group=${group} topic=${topic.topic}: ${stage} failed: ${describeError(error)}`);
            }
          },
        });
        this.driverSubscriptions.push(subscription);
      }
    }
  }

  /** One message from the Apache driver: the listener's outcome as the driver's decision. */
  private async consumeDriven(
    group: string,
    topic: TopicPlan<MessageHandler>,
    message: DriverMessage,
  ): Promise<DriverDecision | undefined> {
    const listener = listenerFor(topic, message.tag);
    if (!listener) {
      this.log.warn(
        `no listener for tag "${message.tag}" of msgId=${message.msgId} topic=${message.topic} group=${group}; consumed`,
      );
      return undefined;
    }
    const outcome = await this.consume(listener, messageViewOf(message), {
      consumerGroup: group,
      brokerName: '',
      manualAck: listener.metadata.options.manualAck === true,
      deliveryAttempt: message.deliveryAttempt,
    });
    if (outcome.kind === 'dead-letter') return { deadLetter: true };
    if (outcome.kind === 'retry') {
      return outcome.delayMs === undefined ? { retry: true } : { retry: true, afterMs: outcome.delayMs };
    }
    return undefined;
  }

  private async startPop(plan: GroupPlan<MessageHandler>): Promise<void> {
    const { group, settings, topics } = plan;
    const subscriptions: Record<string, string | { sql: string }> = {};
    for (const topic of topics.values()) subscriptions[topic.topic] = topic.expression;
    const consumer = new SimpleConsumer({
      group,
      transport: this.connection!.transport,
      clock: this.connection!.clock,
      subscriptions,
      awaitDurationMs: this.options.popAwaitDurationMs ?? DEFAULT_POP_AWAIT_DURATION_MS,
    });
    const loop: PopLoop = { consumer, listener: undefined };
    this.popLoops.set(group, loop);
    await consumer.start();
    loop.listener = consumer.listen((message) => this.consumePopped(plan, consumer, message), {
      maxCount: Math.min(settings.concurrency ?? 16, MAX_RECEIVE_COUNT),
      invisibleDurationMs: settings.invisibleTimeMs ?? DEFAULT_INVISIBLE_DURATION_MS,
      onError: (error, retryDelayMs) =>
        this.log.warn(
          `receive of group=${group} failed: ${describeError(error)}; retried in ${retryDelayMs} ms`,
        ),
    });
  }

  private async consumePopped(
    plan: GroupPlan<MessageHandler>,
    consumer: SimpleConsumer,
    message: ReceivedMessage,
  ): Promise<void> {
    const topic = plan.topics.get(message.topic);
    const listener = topic && listenerFor(topic, message.tag);
    const outcome: Outcome = listener
      ? await this.consume(
          listener,
          message,
          {
            consumerGroup: plan.group,
            brokerName: message.brokerName,
            manualAck: listener.metadata.options.manualAck === true,
            deliveryAttempt: message.deliveryAttempt,
          },
          true,
        )
      : { kind: 'ack' };
    try {
      if (outcome.kind === 'ack') await consumer.ack(message);
      else if (outcome.kind === 'retry' && outcome.delayMs !== undefined)
        await consumer.changeInvisibleDuration(message, outcome.delayMs);
      // else: delivered again once its invisible time ends (pop dead-letters after the broker's
      // maxReconsumeTimes: a pop client cannot send a message to the dead-letter queue itself)
    } catch (error) {
      this.log.warn(
        `${outcome.kind} of msgId=${message.msgId} topic=${message.topic} group=${plan.group} failed: ${describeError(error)}; it is delivered again after its invisible time`,
      );
    }
  }

  /** Runs the handler of one message, measured when metrics are on, and says what to tell the broker. */
  private async consume(
    listener: PlannedListener<MessageHandler>,
    message: MessageView,
    delivery: RocketDelivery,
    pop = false,
  ): Promise<Outcome> {
    const metrics = this.options.metrics;
    const run = (): Promise<Outcome> =>
      traceProcess(
        message,
        delivery.consumerGroup,
        () => this.runHandler(listener, message, delivery, pop),
        (outcome) => (outcome.kind === 'ack' ? undefined : `handler outcome: ${outcome.kind}`),
      );
    if (!metrics) return run();
    const startedAt = performance.now();
    const outcome = await run();
    metrics.handled(
      { topic: message.topic, tag: message.tag ?? '', group: delivery.consumerGroup },
      message.msgId,
      (performance.now() - startedAt) / 1000,
      outcome.kind,
    );
    return outcome;
  }

  /** Runs the handler of one message and says what to tell the broker. */
  private async runHandler(
    listener: PlannedListener<MessageHandler>,
    message: MessageView,
    delivery: RocketDelivery,
    pop = false,
  ): Promise<Outcome> {
    const { handlerName, options } = listener.metadata;
    const where = `msgId=${message.msgId} topic=${message.topic} tag=${message.tag ?? ''} group=${delivery.consumerGroup} reconsumeTimes=${message.reconsumeTimes}`;
    const retry: Outcome = { kind: 'retry', delayMs: options.retryDelayMs };
    let payload: unknown;
    try {
      const deserialize =
        options.deserializer ??
        (options.raw ? (m: MessageView) => m.body : (this.options.deserializer ?? decodeJson));
      payload = deserialize(message);
    } catch (error) {
      // the same bytes never parse on a retry
      this.log.error(
        `${handlerName}: cannot deserialize ${where}: ${describeError(error)}; ${this.deadLetterNote(delivery, pop)}`,
        stackOf(error),
      );
      return { kind: 'dead-letter' };
    }
    const context = new RocketContext(message, delivery);
    const replyTo = message.properties[REPLY_TO_PROPERTY];
    const correlationId = message.properties[CORRELATION_ID_PROPERTY];
    const replies = options.reply === true && replyTo !== undefined && correlationId !== undefined;
    let response: { response: unknown } | { err: unknown };
    try {
      const result: unknown = await listener.handler(payload, context);
      const value = await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
      response = { response: value };
    } catch (thrown) {
      const error = realFailure(thrown, context);
      if (isRocketDiscard(thrown)) {
        this.log.warn(`${handlerName} discarded ${where}: ${thrown.reason}`);
        response = { err: { status: 'error', message: thrown.reason } };
      } else if (replies) {
        this.log.warn(`${handlerName} failed request ${where}: ${describeError(error)}; error replied`);
        response = { err: thrown };
      } else if (context.getAckDecision()?.kind === 'ack') {
        this.log.warn(`${handlerName} threw after ack() of ${where}: ${describeError(error)}; consumed`);
        return { kind: 'ack' };
      } else if (matchesDeadLetter(error, options.deadLetterOn ?? this.deadLetterOn)) {
        this.log.error(
          `${handlerName} failed ${where}: ${describeError(error)}; not retriable (deadLetterOn), ${this.deadLetterNote(delivery, pop)}`,
          stackOf(error),
        );
        return { kind: 'dead-letter' };
      } else {
        this.log.error(`${handlerName} failed ${where}: ${describeError(error)}; retried`, stackOf(error));
        const decision = context.getAckDecision();
        return decision?.kind === 'nack'
          ? { kind: 'retry', delayMs: decision.delayMs ?? options.retryDelayMs }
          : retry;
      }
    }
    if (replies) {
      const replyTopic = this.options.replyTopic ?? DEFAULT_REPLY_TOPIC;
      const asked = message.properties[REPLY_TOPIC_PROPERTY] ?? replyTopic;
      if (asked !== replyTopic) {
        // a request must not make this server write to a topic of its choosing
        this.log.error(
          `${handlerName}: request ${where} asks for replies on "${asked}", but this server replies on "${replyTopic}" (replyTopic); not answered`,
        );
        return { kind: 'ack' };
      }
      try {
        await this.reply(replyTopic, replyTo, correlationId, response);
      } catch (error) {
        this.log.error(`${handlerName}: reply to ${where} failed: ${describeError(error)}; retried`);
        return retry;
      }
      return { kind: 'ack' };
    }
    if ('err' in response) return { kind: 'ack' }; // discarded
    if (!delivery.manualAck) return { kind: 'ack' };
    const decision = context.getAckDecision();
    if (!decision) {
      this.log.warn(`${handlerName} settled ${where} without ctx.ack() or ctx.nack(); consumed again`);
      return retry;
    }
    return decision.kind === 'ack'
      ? { kind: 'ack' }
      : { kind: 'retry', delayMs: decision.delayMs ?? options.retryDelayMs };
  }

  private async reply(
    topic: string,
    replyTo: string,
    correlationId: string,
    response: { response: unknown } | { err: unknown },
  ): Promise<void> {
    await (this.producer ?? this.driverProducer)!.send({
      topic,
      tag: replyTo,
      properties: { [CORRELATION_ID_PROPERTY]: correlationId },
      body: encodeBody({ ...response, isDisposed: true }),
    });
  }

  /**
   * Listens to the push consumers' instrumentation events (`consumer.dead-lettered`,
   * `consumer.rebalance`…). Registered before `listen()`, they are attached when the consumers start.
   */
  on<K extends EventName, C extends RocketServerEvents[K] = RocketServerEvents[K]>(
    event: K,
    callback: C,
  ): void {
    this.eventListeners.push([event, callback]);
    for (const consumer of this.pushConsumers.values()) consumer.on(event, callback);
  }

  /** The connection and the consumers by group. Throws before `listen()`. */
  unwrap<T>(): T {
    if (this.state !== 'RUNNING') {
      throw new RocketError(
        'CLOSED',
        'RocketServer is not listening: call listen() (app.listen / startAllMicroservices) before unwrap()',
      );
    }
    return {
      connection: this.connection,
      driver: this.driver,
      pushConsumers: new Map(this.pushConsumers),
      simpleConsumers: new Map([...this.popLoops].map(([group, loop]) => [group, loop.consumer])),
    } as T;
  }

  /** Stops the consumers (running handlers finish first), the reply producer and what the server owns. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.starting?.catch(() => undefined);
      await this.shutdownAll();
      this.state = 'CLOSED';
      this._status$.next('disconnected');
    })();
    return this.closing;
  }

  private async shutdownAll(): Promise<void> {
    await Promise.all([...this.popLoops.values()].map((loop) => loop.listener?.stop()));
    await Promise.all([
      ...[...this.pushConsumers.values()].map((c) => c.shutdown()),
      ...[...this.popLoops.values()].map((loop) => loop.consumer.shutdown()),
    ]);
    await this.producer?.shutdown();
    await this.connection?.close();
    await this.driver?.close();
  }
}
