/** The transport id of {@link RocketServer}: handlers declared with `@RocketListener` carry it, so other transports of the app never pick them up. */
export const ROCKET_TRANSPORT: unique symbol = Symbol('ROCKET_TRANSPORT');

/** Shared topic that request-reply answers travel on. Created by embedded brokers; must exist on a standalone broker or cluster. */
export const DEFAULT_REPLY_TOPIC = 'RocketNestReply';
/** How long `RocketClient.send()` waits for the answer, in ms. (RocketMQ `requestTimeout` of `DefaultMQProducer.request`, 3 s there) */
export const DEFAULT_REPLY_TIMEOUT_MS = 5000;
/** Requests of one client waiting for their answer at once; more fail fast with retriable `BROKER_BUSY`. */
export const DEFAULT_MAX_PENDING_REQUESTS = 10_000;
/** Consumer group of listeners that name none. (rocketmq-spring `rocketmq.consumer.group`) */
export const DEFAULT_CONSUMER_GROUP = 'RocketNestConsumer';
/** Producer group of `RocketTemplate`, `RocketClient` and replies. (rocketmq-spring `rocketmq.producer.group`) */
export const DEFAULT_PRODUCER_GROUP = 'RocketNestProducer';
/** How long one pop of a `consumerType: 'simple'` listener waits for messages, ms; also the longest wait of `close()` for it. (RocketMQ `awaitDuration`) */
export const DEFAULT_POP_AWAIT_DURATION_MS = 1000;

/** User property carrying the correlation id of a request and of its reply. */
export const CORRELATION_ID_PROPERTY = 'RN_CORRELATION_ID';
/** User property of a request: the tag its reply must carry (the requesting client's id). */
export const REPLY_TO_PROPERTY = 'RN_REPLY_TO';
/** User property of a request: the topic its reply goes to. */
export const REPLY_TOPIC_PROPERTY = 'RN_REPLY_TOPIC';

/** Metadata key of `@RocketTransactionListener`. */
export const ROCKET_TRANSACTION_LISTENER = 'rocketnest:transaction-listener';
/** Injection token of the options given to `RocketModule.forRoot`/`forRootAsync`. */
export const ROCKET_MODULE_OPTIONS = 'ROCKET_MODULE_OPTIONS';
