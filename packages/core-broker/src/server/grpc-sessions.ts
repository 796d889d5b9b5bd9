import type { Broker } from '../broker/broker';
import type { FilterKind, Subscription, TransactionCheck } from '../message/protocol';
import {
  ClientType,
  FilterType,
  type Settings,
  type SubscriptionEntry,
  type TelemetryCommand,
  msDuration,
} from '../rocketmq5/codec';
import { Code, OK_STATUS, StatusFailure } from '../rocketmq5/status';
import { groupOf, outboundMessage, topicOf } from './grpc-convert';

/** Producers' send retries, as the Apache proxy hands them out (`GrpcClientSettingsManager`): 3 attempts. */
export const PRODUCER_MAX_ATTEMPTS = 3;
/** Producers' backoff on TOO_MANY_REQUESTS: 10 ms doubling to 1 s (Apache proxy defaults). */
export const PRODUCER_BACKOFF = { initialMs: 10, maxMs: 1_000, multiplier: 2 } as const;
/**
 * Consumers' redelivery backoff: 5 s doubling to 2 h, Apache's exponential group retry policy. (Apache's
 * default is its customized 1 s…2 h table; the Node client 1.0.8 honours only exponential policies.)
 */
export const CONSUMER_BACKOFF = { initialMs: 5_000, maxMs: 2 * 3600_000, multiplier: 2 } as const;
/**
 * How long after a client's first Settings reply a QueryRoute from it is followed by the same reply
 * again (see {@link ClientSessions.routeAnswered}). Start-up only; the clients query each topic's
 * route once at start, then every 30 s.
 */
export const SETTINGS_ECHO_WINDOW_MS = 30_000;
/** The pause between the last start-up QueryRoute answer and the repeated Settings reply. */
export const SETTINGS_ECHO_DELAY_MS = 50;
/** At most this many repeated Settings replies per client session. */
export const MAX_SETTINGS_ECHOES = 16;
/** At most this many clients' repeated Settings replies wait at once; route answers past it get none. */
export const MAX_PENDING_SETTINGS_ECHOES = 4_096;
/** Messages per ReceiveMessage a push consumer asks for (RocketMQ proxy `receive_batch_size`). */
export const CONSUMER_RECEIVE_BATCH_SIZE = 32;
/** Long polling a push consumer asks for (RocketMQ proxy `grpcClientConsumerMaxLongPollingTimeoutMillis`). */
export const MAX_LONG_POLLING_MS = 20_000;

/** What RocketNest knows of a RocketMQ 5 client: its last Settings and the Telemetry stream to reach it. */
export interface ClientSession {
  clientId: string;
  clientType: number;
  settings: Settings | undefined;
  /** Consumers: their group. */
  group: string | undefined;
  /** Producers: the topics they declared (each is also their producer group, as in Apache). */
  topics: string[];
  subscriptions: Subscription[];
  /** Writes a command down the client's latest Telemetry stream; undefined while none is open. */
  write: ((command: TelemetryCommand) => void) | undefined;
  /** The last Settings reply the client got, and when it got its first one (start-up echo). */
  answered: { settings: Settings; firstAtMs: number; echoes: number } | undefined;
}

/**
 * The RocketMQ 5 clients known to one gRPC front end, by client id. Settings arrive on Telemetry;
 * each is mapped onto the broker's membership (`Broker.heartbeat`): a producer under each of its
 * topics as producer group, a consumer in its group with the subscriptions it declared. The
 * client's channel answers the broker's transaction checks with a `recover_orphaned_transaction_command`.
 */
export class ClientSessions {
  private readonly sessions = new Map<string, ClientSession>();
  /** Repeated Settings replies waiting for their pause to end, by client id (see `routeAnswered`). */
  private readonly echoes = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly broker: Broker,
    private readonly maxBodyBytes: number,
  ) {}

  get(clientId: string): ClientSession | undefined {
    return this.sessions.get(clientId);
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * A Settings command from a client: validated, stored, applied to the broker, and the merged
   * Settings the client must use returned. Throws `StatusFailure` for settings the broker refuses.
   */
  applySettings(clientId: string, settings: Settings): Settings {
    const { publishing, subscription } = settings;
    if (!publishing && !subscription) {
      throw new StatusFailure(Code.BAD_REQUEST, 'there is no publishing or subscription data in settings');
    }
    const session = this.session(clientId);
    session.settings = settings;
    session.clientType =
      settings.clientType ?? (publishing ? ClientType.PRODUCER : ClientType.SIMPLE_CONSUMER);
    if (publishing) {
      session.topics = publishing.topics.map((t) => topicOf(t));
    } else if (subscription) {
      session.group = groupOf(subscription.group);
      session.subscriptions = subscription.subscriptions.map(subscriptionOf);
    }
    this.heartbeat(session);
    const merged = this.merged(session, settings);
    if (session.answered) session.answered.settings = merged;
    else session.answered = { settings: merged, firstAtMs: Date.now(), echoes: 0 };
    return merged;
  }

  /**
   * Called when a QueryRoute from `clientId` is answered. {@link SETTINGS_ECHO_DELAY_MS} after the
   * client's last such answer (each one restarts the pause), a client that has its Settings reply by
   * then gets the same reply again: within {@link SETTINGS_ECHO_WINDOW_MS} of its first reply, at
   * most {@link MAX_SETTINGS_ECHOES} times, with at most {@link MAX_PENDING_SETTINGS_ECHOES} pauses
   * running at once.
   *
   * Why: rocketmq-client-nodejs 1.0.8 queries its topics' routes one after another at start-up,
   * sends Settings after the first, and only after the last creates the promise the Settings reply
   * resolves. A reply that arrives between the two is dropped and `startup()` hangs until the
   * client's 5-minute settings sync (docs/rocketmq5-clients.md: 12 of 30 start-ups with two
   * topics). The repeated reply arrives after the last route answer, so the promise exists. The
   * pause is checked when it ends, not when it starts, because a route answer and the Settings
   * exchange race each other on the server as well. A Settings reply carries nothing new to a
   * client that has it: the Java and Node clients apply it again (Apache's proxy also pushes
   * Settings on Telemetry at any time).
   */
  routeAnswered(clientId: string): void {
    const session = this.sessions.get(clientId);
    const answered = session?.answered;
    if (
      answered &&
      (answered.echoes >= MAX_SETTINGS_ECHOES || Date.now() - answered.firstAtMs > SETTINGS_ECHO_WINDOW_MS)
    )
      return;
    const pending = this.echoes.get(clientId);
    if (pending === undefined && this.echoes.size >= MAX_PENDING_SETTINGS_ECHOES) return;
    clearTimeout(pending);
    const timer = setTimeout(() => {
      this.echoes.delete(clientId);
      const now = this.sessions.get(clientId);
      const reply = now?.answered;
      if (!now?.write || !reply || reply.echoes >= MAX_SETTINGS_ECHOES) return;
      reply.echoes++;
      now.write({ status: OK_STATUS, settings: reply.settings });
    }, SETTINGS_ECHO_DELAY_MS).unref();
    this.echoes.set(clientId, timer);
  }

  /** A Heartbeat: refreshes the client's membership, from its Settings or, without them, from the request. */
  heartbeat(sessionOrId: ClientSession | string, clientType?: number, group?: string): void {
    const session = typeof sessionOrId === 'string' ? this.session(sessionOrId) : sessionOrId;
    if (clientType !== undefined && clientType !== ClientType.UNSPECIFIED && session.settings === undefined) {
      // no Settings yet (or the server restarted): answer from the heartbeat rather than refuse,
      // so clients that resend Settings rarely (Go: every 5 min) keep working
      session.clientType = clientType;
    }
    if (group !== undefined && session.group === undefined) session.group = group;
    const consumer = session.clientType !== ClientType.PRODUCER && session.group !== undefined;
    try {
      this.broker.heartbeat({
        clientId: session.clientId,
        producerGroups: session.clientType === ClientType.PRODUCER ? session.topics : [],
        consumers: consumer
          ? [
              {
                group: session.group!,
                messageModel: 'CLUSTERING',
                consumeType: session.clientType === ClientType.PUSH_CONSUMER ? 'PUSH' : 'SIMPLE',
                subscriptions: session.subscriptions,
              },
            ]
          : [],
      });
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'INVALID_FILTER') {
        throw new StatusFailure(Code.ILLEGAL_FILTER_EXPRESSION, error.message);
      }
      throw error;
    }
    this.broker.registerChannel(session.clientId, {
      checkTransaction: (check) => this.checkTransaction(session, check),
    });
  }

  /** The client's Telemetry stream: where server commands go. Returns the detach for when it closes. */
  attach(clientId: string, write: (command: TelemetryCommand) => void): () => void {
    const session = this.session(clientId);
    session.write = write;
    return () => {
      if (session.write === write) session.write = undefined;
    };
  }

  /** NotifyClientTermination: the client leaves its groups; its Settings are forgotten. */
  terminate(clientId: string): void {
    clearTimeout(this.echoes.get(clientId));
    this.echoes.delete(clientId);
    this.sessions.delete(clientId);
    this.broker.unregisterClient({ clientId });
  }

  /** Every client's Telemetry writer, for closing their streams at shutdown. */
  clear(): void {
    for (const timer of this.echoes.values()) clearTimeout(timer);
    this.echoes.clear();
    for (const clientId of this.sessions.keys()) this.broker.unregisterClient({ clientId });
    this.sessions.clear();
  }

  private session(clientId: string): ClientSession {
    let session = this.sessions.get(clientId);
    if (!session) {
      session = {
        clientId,
        clientType: ClientType.UNSPECIFIED,
        settings: undefined,
        group: undefined,
        topics: [],
        subscriptions: [],
        write: undefined,
        answered: undefined,
      };
      this.sessions.set(clientId, session);
    }
    return session;
  }

  private checkTransaction(session: ClientSession, check: TransactionCheck): void {
    // no open stream: the broker asks again at its next check
    session.write?.({
      recoverOrphanedTransactionCommand: {
        message: outboundMessage(check.message),
        transactionId: check.transactionId,
      },
    });
  }

  /** The client's Settings with the server's part filled in, as the Apache proxy merges them. */
  private merged(session: ClientSession, settings: Settings): Settings {
    const exponential = (b: { initialMs: number; maxMs: number; multiplier: number }) => ({
      initial: msDuration(b.initialMs),
      max: msDuration(b.maxMs),
      multiplier: b.multiplier,
    });
    const base: Settings = {
      clientType: session.clientType,
      accessPoint: settings.accessPoint ?? null,
      requestTimeout: settings.requestTimeout ?? null,
      userAgent: settings.userAgent ?? null,
      metric: { on: false },
    };
    if (settings.publishing) {
      return {
        ...base,
        backoffPolicy: {
          maxAttempts: PRODUCER_MAX_ATTEMPTS,
          exponentialBackoff: exponential(PRODUCER_BACKOFF),
        },
        publishing: {
          topics: settings.publishing.topics,
          maxBodySize: this.maxBodyBytes,
          validateMessageType: true,
        },
      };
    }
    const subscription = settings.subscription!;
    const fifo = session.subscriptions.some((s) => this.broker.getTopic(s.topic)?.fifo === true);
    return {
      ...base,
      backoffPolicy: {
        maxAttempts: this.broker.options.maxReconsumeTimes + 1,
        exponentialBackoff: exponential(CONSUMER_BACKOFF),
      },
      subscription: {
        group: subscription.group ?? null,
        subscriptions: subscription.subscriptions,
        fifo,
        receiveBatchSize: CONSUMER_RECEIVE_BATCH_SIZE,
        longPollingTimeout: msDuration(MAX_LONG_POLLING_MS),
      },
    };
  }
}

/** A RocketMQ 5 subscription entry as the broker's subscription. */
export function subscriptionOf(entry: SubscriptionEntry): Subscription {
  return { topic: topicOf(entry.topic, true), ...filterOf(entry.expression) };
}

export function filterOf(expression: { type: number; expression: string } | null | undefined): {
  kind: FilterKind;
  expression: string;
} {
  if (!expression) return { kind: 'TAG', expression: '*' };
  if (expression.type === FilterType.SQL) return { kind: 'SQL92', expression: expression.expression };
  if (expression.type !== FilterType.TAG && expression.type !== FilterType.UNSPECIFIED) {
    throw new StatusFailure(
      Code.ILLEGAL_FILTER_EXPRESSION,
      `filter type ${expression.type} is neither TAG nor SQL`,
    );
  }
  return { kind: 'TAG', expression: expression.expression.trim() === '' ? '*' : expression.expression };
}
