import { Logger } from '@nestjs/common';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import {
  ApacheDriver,
  ConsumeResult,
  Producer,
  type DriverProducer,
  PushConsumer,
  RocketError,
  systemClock,
  type Clock,
  type ProducerOptions,
  type SendResult,
  type Timer,
} from '@rocketnest/core-broker';
import { randomUUID } from 'node:crypto';
import { openConnection } from './embedded-registry';
import type { RocketConnection, RocketConnectionOptions } from './rocket-connection';
import { RocketRecord, type RocketRecordOptions } from './rocket.record-builder';
import {
  CORRELATION_ID_PROPERTY,
  DEFAULT_MAX_PENDING_REQUESTS,
  DEFAULT_PRODUCER_GROUP,
  DEFAULT_REPLY_TIMEOUT_MS,
  DEFAULT_REPLY_TOPIC,
  REPLY_TO_PROPERTY,
  REPLY_TOPIC_PROPERTY,
} from './rocket.constants';
import { describeError, encodeBody, parseDestination } from './rocket-serialization';
import type { RocketStatus } from './rocket.server';

export interface RocketClientOptions extends RocketConnectionOptions {
  /** Producer group of the client's sends. Default `RocketNestProducer`. (RocketMQ `producerGroup`) */
  producerGroup?: string;
  /** Producer tuning: `sendTimeoutMs`, `retryTimesWhenSendFailed`… */
  producer?: Omit<ProducerOptions, 'group' | 'transport'>;
  /** Topic the answers to `send()` come back on; must exist (embedded brokers create it). Default `RocketNestReply`. */
  replyTopic?: string;
  /** How long `send()` waits for its answer, ms. Default 5000. */
  replyTimeoutMs?: number;
  /** Requests waiting for an answer at once; more fail fast with retriable `BROKER_BUSY`. Default 10 000. */
  maxPendingRequests?: number;
  /** This client's id: the tag its answers carry, and its reply consumer group. Default `rn-<random uuid>`. */
  clientId?: string;
  /** Default: the system clock (timers unref'd). */
  clock?: Clock;
}

interface Pending {
  callback: (packet: WritePacket) => void;
  timer: Timer;
}

/**
 * A Nest `ClientProxy` on RocketNest. `emit(topic, data)` sends a message (a {@link RocketRecord}
 * sets tag, keys, properties, message group, delay or delivery time) and emits its `SendResult`.
 * `send(topic, data)` is request-reply: the request carries a correlation id and this client's id;
 * a `@RocketListener(topic, tag, { reply: true })` handler answers on the reply topic with this
 * client's id as the tag, which this client's own consumer group (broadcasting, from the latest
 * offset) filters on; no answer within `replyTimeoutMs` errors with `RocketError('TIMEOUT')`.
 */
export class RocketClient extends ClientProxy {
  private readonly log = new Logger('RocketClient');
  private readonly clock: Clock;
  private readonly replyTopic: string;
  private readonly replyTimeoutMs: number;
  private readonly maxPendingRequests: number;
  /** The tag answers to this client carry. */
  readonly clientId: string;
  private connecting: Promise<Producer | DriverProducer> | undefined;
  private connection: RocketConnection | undefined;
  private producer: Producer | DriverProducer | undefined;
  private replyConsumer: Promise<{ close(): Promise<void> }> | undefined;
  /** With the `apache` option: the Apache RocketMQ 5 driver the producer and the reply subscription run on. */
  private driver: ApacheDriver | undefined;
  private readonly pending = new Map<string, Pending>();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: RocketClientOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.replyTopic = options.replyTopic ?? DEFAULT_REPLY_TOPIC;
    this.replyTimeoutMs = positive('replyTimeoutMs', options.replyTimeoutMs, DEFAULT_REPLY_TIMEOUT_MS);
    this.maxPendingRequests = positive(
      'maxPendingRequests',
      options.maxPendingRequests,
      DEFAULT_MAX_PENDING_REQUESTS,
    );
    this.clientId = options.clientId ?? `rn-${randomUUID()}`;
  }

  /**
   * Opens the connection and starts the producer (once; `emit`/`send` call it): a core-broker
   * `Producer`, or with the `apache` option the Apache driver's producer.
   */
  connect(): Promise<Producer | DriverProducer> {
    if (this.closing) return Promise.reject(new RocketError('CLOSED', 'RocketClient is closed'));
    this.connecting ??= (async () => {
      if (this.options.apache !== undefined) {
        const driver = new ApacheDriver(this.options.apache);
        try {
          this.producer = await driver.createProducer({
            group: this.options.producerGroup ?? DEFAULT_PRODUCER_GROUP,
          });
        } catch (error) {
          await driver.close();
          throw error;
        }
        this.driver = driver;
        this._status$.next('connected' satisfies RocketStatus);
        return this.producer;
      }
      const connection = await openConnection(this.options, this.replyTopic, 'RocketClient');
      const producer = new Producer({
        clock: this.clock,
        ...this.options.producer,
        group: this.options.producerGroup ?? DEFAULT_PRODUCER_GROUP,
        transport: connection.transport,
      });
      try {
        await producer.start();
      } catch (error) {
        await connection.close();
        throw error;
      }
      this.connection = connection;
      this.producer = producer;
      this._status$.next('connected' satisfies RocketStatus);
      return producer;
    })();
    this.connecting.catch(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** The core-broker `Producer`. Throws before `connect()`. */
  unwrap<T>(): T {
    if (!this.producer) {
      throw new RocketError('CLOSED', 'RocketClient is not connected: call connect() before unwrap()');
    }
    return this.producer as T;
  }

  /** Fails waiting requests with `CLOSED`, stops the reply consumer and the producer, closes what it owns. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const [id, pending] of this.pending) {
        this.pending.delete(id);
        pending.timer.cancel();
        pending.callback({
          err: new RocketError('CLOSED', 'RocketClient closed before the reply came'),
          isDisposed: true,
        });
      }
      await this.connecting?.catch(() => undefined);
      const consumer = await this.replyConsumer?.catch(() => undefined);
      await consumer?.close();
      if (this.producer instanceof Producer) await this.producer.shutdown();
      await this.connection?.close();
      await this.driver?.close();
      this._status$.next('disconnected' satisfies RocketStatus);
    })();
    return this.closing;
  }

  protected async dispatchEvent<T = SendResult>(packet: ReadPacket): Promise<T> {
    const { topic, tag } = parseDestination(packet.pattern, 'RocketClient.emit()');
    const producer = await this.connect();
    const { data, options } = unpack(packet.data);
    return (await producer.send({ topic, ...(tag ? { tag } : {}), body: encodeBody(data), ...options })) as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const correlationId = randomUUID();
    if (this.pending.size >= this.maxPendingRequests) {
      callback({
        err: new RocketError(
          'BROKER_BUSY',
          `${this.pending.size} requests are waiting for a reply (maxPendingRequests); try again later`,
        ),
        isDisposed: true,
      });
      return () => undefined;
    }
    let topic: string;
    let tag: string | undefined;
    let unpacked: ReturnType<typeof unpack>;
    try {
      ({ topic, tag } = parseDestination(packet.pattern, 'RocketClient.send()'));
      unpacked = unpack(packet.data);
      tag = unpacked.options.tag ?? tag;
      if (tag === undefined || tag.trim() === '') {
        // the broker filters a request by tag before any reply listener sees it: without one it would only time out
        throw new RocketError(
          'INVALID_ARGUMENT',
          `RocketClient.send("${topic}") has no tag, so no reply listener receives it: send to "${topic}:<tag>" (or set the tag with RocketRecordBuilder.setTag) matching a @RocketListener("${topic}", "<tag>", { reply: true }); a reply listener with tag "*" answers any tag`,
        );
      }
    } catch (error) {
      callback({ err: error, isDisposed: true });
      return () => undefined;
    }
    const { data, options } = unpacked;
    const forget = (): boolean => {
      const entry = this.pending.get(correlationId);
      if (!entry) return false;
      this.pending.delete(correlationId);
      entry.timer.cancel();
      return true;
    };
    const timer = this.clock.setTimer(this.replyTimeoutMs, () => {
      if (!forget()) return;
      callback({
        err: new RocketError(
          'TIMEOUT',
          `no reply to the request on "${topic}:${tag}" within ${this.replyTimeoutMs} ms (correlation id ${correlationId}): is a @RocketListener("${topic}", "${tag}", { reply: true }) running, and does its server use reply topic "${this.replyTopic}"?`,
        ),
        isDisposed: true,
      });
    });
    this.pending.set(correlationId, { callback, timer });
    void (async () => {
      try {
        const producer = await this.connect();
        await this.listenForReplies();
        await producer.send({
          topic,
          body: encodeBody(data),
          ...options,
          tag,
          properties: {
            ...options.properties,
            [CORRELATION_ID_PROPERTY]: correlationId,
            [REPLY_TO_PROPERTY]: this.clientId,
            [REPLY_TOPIC_PROPERTY]: this.replyTopic,
          },
        });
      } catch (error) {
        if (forget()) callback({ err: error, isDisposed: true });
      }
    })();
    return () => void forget();
  }

  /** Starts (once) this client's reply consumer: its own group, broadcasting, tag = client id, from the latest offset. */
  private listenForReplies(): Promise<{ close(): Promise<void> }> {
    this.replyConsumer ??= this.driver
      ? this.listenOnApache(this.driver)
      : (async () => {
          // a consumer would wait quietly for a topic that does not exist: fail the request instead
          await this.connection!.transport.topicRoute(this.replyTopic).catch((error: unknown) => {
            throw new RocketError(
              'TOPIC_NOT_FOUND',
              `the reply topic "${this.replyTopic}" of RocketClient.send() is not reachable (${describeError(error)}); create it on the brokers (rocketnest broker --topics …,${this.replyTopic}) or set replyTopic`,
              { cause: error },
            );
          });
          const consumer = new PushConsumer({
            group: `RocketNestReply-${this.clientId}`.slice(0, 255),
            transport: this.connection!.transport,
            messageModel: 'BROADCASTING',
            consumeFromWhere: 'LAST_OFFSET',
            clock: this.clock,
          });
          consumer.subscribe(this.replyTopic, this.clientId);
          consumer.registerMessageListener(async (messages) => {
            for (const message of messages) {
              this.answer(message.properties[CORRELATION_ID_PROPERTY], message.body);
            }
            return ConsumeResult.CONSUME_SUCCESS;
          });
          await consumer.start();
          return { close: () => consumer.shutdown() };
        })();
    this.replyConsumer.catch((error: unknown) => {
      this.log.error(`reply consumer of ${this.clientId} did not start: ${describeError(error)}`);
      this.replyConsumer = undefined;
    });
    return this.replyConsumer;
  }

  /** Hands a reply to its waiting request; replies that timed out or are not ours are dropped. */
  private answer(correlationId: string | undefined, body: Buffer): void {
    const entry = correlationId === undefined ? undefined : this.pending.get(correlationId);
    if (!entry || correlationId === undefined) return;
    this.pending.delete(correlationId);
    entry.timer.cancel();
    let packet: WritePacket;
    try {
      packet = JSON.parse(body.toString('utf8')) as WritePacket;
    } catch (error) {
      packet = { err: new RocketError('PROTOCOL_ERROR', `unreadable reply: ${describeError(error)}`) };
    }
    entry.callback({ ...packet, isDisposed: true });
  }

  /**
   * The reply subscription on Apache RocketMQ, which has no broadcasting over gRPC: a group of
   * this client alone (`RocketNestReply-<clientId>`) filtered on its tag gets the same messages.
   */
  private async listenOnApache(driver: ApacheDriver): Promise<{ close(): Promise<void> }> {
    return driver.subscribe({
      group: `RocketNestReply-${this.clientId}`.slice(0, 255),
      topic: this.replyTopic,
      filter: this.clientId,
      handler: (message) => this.answer(message.properties[CORRELATION_ID_PROPERTY], message.body),
    });
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RocketError(
      'INVALID_OPTION',
      `RocketClient option ${name} must be an integer ≥ 1; got ${value}`,
    );
  }
  return value;
}

function unpack(data: unknown): { data: unknown; options: RocketRecordOptions } {
  return data instanceof RocketRecord ? { data: data.data, options: data.options } : { data, options: {} };
}
