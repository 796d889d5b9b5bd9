import { RocketError, isRocketError } from '../common/errors';
import type {
  AckRequest,
  AdminMessage,
  ChangeInvisibleRequest,
  ClientIdRequest,
  CommitOffsetRequest,
  ConsumeStatsRow,
  EndTransactionRequest,
  GroupQueueRequest,
  GroupRequest,
  HeartbeatRequest,
  PoppedMessage,
  PopRequest,
  PullRequest,
  PullResponse,
  QueueLockRequest,
  QueueRef,
  QueueRequest,
  SearchOffsetRequest,
  SendBackRequest,
  SendRequest,
  SendResponse,
  TopicConfig,
  TopicInput,
  TopicRoute,
  TopicRouteRequest,
} from './protocol';

/**
 * THE OPERATION TABLE: the one map of what a client may ask of a broker. One row per operation:
 * its name, its request and response type (below, in {@link BrokerOperations}), the broker method
 * that serves it (the `Broker` method of the same name: `Broker implements BrokerApi`, so the
 * compiler checks every row has one), and the row's transport-neutral facts in
 * {@link OPERATIONS} (its domain; how long the broker may hold it before answering).
 *
 * Everything else is derived from this table, per front end:
 *
 * | front end            | where                          | what it adds per row                              |
 * |----------------------|--------------------------------|---------------------------------------------------|
 * | in process           | `client/in-process-transport.ts` | nothing: `broker[name](request)`                 |
 * | TCP (remoting)       | `remoting/operation-codecs.ts` | request code and binary codecs (`WIRE_OPERATIONS`) |
 * | TCP server           | `server/broker-server.ts`      | decode → ACL check → `broker[name]` → encode      |
 * | TCP client           | `client/tcp-transport.ts`      | encode → frame → decode                           |
 *
 * How a new front end (a RocketMQ 5 gRPC endpoint, an HTTP endpoint) maps onto the table: it
 * decodes its own request into the row's request type, calls `broker[name](request)` (the
 * `BrokerApi` method of that name), and encodes the row's response type; it applies the
 * `CLOSED → BROKER_UNAVAILABLE` rule with {@link unavailableIfClosed} and gives a
 * long-polling row `waitMs(request)` beyond its normal deadline. It needs nothing from `remoting/`
 * or `server/broker-server.ts`: the TCP codes and codecs are that front end's own column.
 *
 * Rows whose `perBroker` is false are not addressed to one broker by a client: `topicRoute` is
 * asked of name servers (or merged over brokers), `unregisterClient` goes to every broker.
 *
 * Admin operations (`rocketnest admin`, `RocketAdmin`) are the second table, {@link AdminOperations}:
 * their requests are JSON checked field by field, served by `server/admin-operations.ts`.
 */
export interface BrokerOperations {
  /** This broker's part of a topic's route; `TOPIC_NOT_FOUND` when it does not serve the topic. */
  topicRoute: Operation<TopicRouteRequest, TopicRoute>;
  /** One message or a batch, to one queue. */
  send: Operation<SendRequest, SendResponse>;
  /** Messages of one queue from an offset, long-polling up to `suspendTimeoutMs`. */
  pull: Operation<PullRequest, PullResponse>;
  /** A group's committed offset for a queue, or `undefined` when it never committed one. */
  queryOffset: Operation<GroupQueueRequest, number | undefined>;
  commitOffset: Operation<CommitOffsetRequest, void>;
  minOffset: Operation<QueueRequest, number>;
  maxOffset: Operation<QueueRequest, number>;
  /** First queue offset stored at or after `timestampMs`. */
  searchOffset: Operation<SearchOffsetRequest, number>;
  heartbeat: Operation<HeartbeatRequest, void>;
  /** The client shut down: it leaves its groups. */
  unregisterClient: Operation<ClientIdRequest, void>;
  /** Members of a consumer group as the broker knows them, sorted. */
  consumerIds: Operation<GroupRequest, string[]>;
  sendBack: Operation<SendBackRequest, { deadLettered: boolean }>;
  endTransaction: Operation<EndTransactionRequest, void>;
  pop: Operation<PopRequest, PoppedMessage[]>;
  ack: Operation<AckRequest, void>;
  changeInvisibleTime: Operation<ChangeInvisibleRequest, { receiptHandle: string }>;
  /** Locks queues for orderly consumption; the queues the client now holds. */
  lockQueues: Operation<QueueLockRequest, QueueRef[]>;
  unlockQueues: Operation<QueueLockRequest, void>;
}

/** A row's request and response types. */
export interface Operation<Req, Res> {
  request: Req;
  response: Res;
}

export type OperationName = keyof BrokerOperations;
export type OperationRequest<N extends OperationName> = BrokerOperations[N]['request'];
export type OperationResponse<N extends OperationName> = BrokerOperations[N]['response'];

/** What serves the table: one method per row, named after it. `Broker` implements it. */
export type BrokerApi = {
  [N in OperationName]: (
    request: OperationRequest<N>,
  ) => OperationResponse<N> | Promise<OperationResponse<N>>;
};

/** The domains the rows fall in (one remoting codec file each). */
export type OperationDomain =
  'route' | 'produce' | 'consume' | 'offsets' | 'membership' | 'pop' | 'transactions';

/** The transport-neutral facts of a row. */
export interface OperationRow<N extends OperationName> {
  readonly name: N;
  readonly domain: OperationDomain;
  /** A client addresses the row to one broker by name (`Transport[name](brokerName, request)`). */
  readonly perBroker: boolean;
  /** Long polling: the most the broker may hold the request before answering, beyond a normal call. */
  readonly waitMs?: (request: OperationRequest<N>) => number;
}

/** The operation table's rows, in the order of {@link BrokerOperations}. */
export const OPERATIONS: { readonly [N in OperationName]: OperationRow<N> } = Object.freeze({
  topicRoute: { name: 'topicRoute', domain: 'route', perBroker: false },
  send: { name: 'send', domain: 'produce', perBroker: true },
  pull: { name: 'pull', domain: 'consume', perBroker: true, waitMs: (r: PullRequest) => r.suspendTimeoutMs },
  queryOffset: { name: 'queryOffset', domain: 'offsets', perBroker: true },
  commitOffset: { name: 'commitOffset', domain: 'offsets', perBroker: true },
  minOffset: { name: 'minOffset', domain: 'offsets', perBroker: true },
  maxOffset: { name: 'maxOffset', domain: 'offsets', perBroker: true },
  searchOffset: { name: 'searchOffset', domain: 'offsets', perBroker: true },
  heartbeat: { name: 'heartbeat', domain: 'membership', perBroker: true },
  unregisterClient: { name: 'unregisterClient', domain: 'membership', perBroker: false },
  consumerIds: { name: 'consumerIds', domain: 'membership', perBroker: true },
  sendBack: { name: 'sendBack', domain: 'consume', perBroker: true },
  endTransaction: { name: 'endTransaction', domain: 'transactions', perBroker: true },
  pop: { name: 'pop', domain: 'pop', perBroker: true, waitMs: (r: PopRequest) => r.pollTimeoutMs },
  ack: { name: 'ack', domain: 'pop', perBroker: true },
  changeInvisibleTime: { name: 'changeInvisibleTime', domain: 'pop', perBroker: true },
  lockQueues: { name: 'lockQueues', domain: 'consume', perBroker: true },
  unlockQueues: { name: 'unlockQueues', domain: 'consume', perBroker: true },
});

/** Every row's name. */
export const OPERATION_NAMES = Object.freeze(Object.keys(OPERATIONS) as OperationName[]);

/** The rows a client addresses to one broker by name. */
export type PerBrokerOperationName = Exclude<OperationName, 'topicRoute' | 'unregisterClient'>;

export const PER_BROKER_OPERATION_NAMES = Object.freeze(
  OPERATION_NAMES.filter((name) => OPERATIONS[name].perBroker) as PerBrokerOperationName[],
);

/**
 * Admin operations: what `RocketAdmin` and `rocketnest admin` ask of one broker. Requests are JSON
 * on every front end (rare, human-scale, shapes still moving) and are checked field by field by
 * the server (`server/admin-operations.ts`), which calls the broker.
 */
export interface AdminOperations {
  /** Creates or updates a topic (RocketMQ `updateAndCreateTopic`). */
  updateTopic: Operation<TopicInput, TopicConfig>;
  listTopics: Operation<Record<string, never>, TopicConfig[]>;
  /** The store's counters and state (`MessageStore.stats`); empty for a store without them. */
  storeStats: Operation<Record<string, never>, Record<string, number | boolean>>;
  /** A group's progress with lag per queue (RocketMQ `GET_CONSUME_STATS`). */
  consumeStats: Operation<{ group: string; topic?: string }, ConsumeStatsRow[]>;
  /** A message by id; `null` when no message of this broker has it. */
  viewMessage: Operation<{ msgId: string }, AdminMessage | null>;
  queryMessageByKey: Operation<{ topic: string; key: string; maxCount?: number }, AdminMessage[]>;
  /** Moves a group's offsets on every read queue of a topic to a time; the new offsets. */
  resetOffset: Operation<
    { group: string; topic: string; timestampMs: number },
    Array<{ queueId: number; offset: number }>
  >;
  /**
   * What a slave copies of its master besides the commit log (RocketMQ's `SlaveSynchronize`):
   * topic configs and committed consumer offsets.
   */
  replicaSync: Operation<Record<string, never>, ReplicaSyncState>;
  /** Turns this slave into the master of its broker name (manual failover). */
  promote: Operation<PromoteRequest, PromoteResult>;
  /** Re-sends a dead-lettered message to its original topic. */
  resendDeadLetter: Operation<
    { group: string; msgId: string },
    { msgId: string; topic: string; queueId: number }
  >;
}

/** A master's topic configs, consumer offsets and delay progress, as its slaves fetch them. */
export interface ReplicaSyncState {
  topics: TopicConfig[];
  offsets: Array<{ group: string; topic: string; queueId: number; offset: number }>;
  /**
   * Which delayed messages (schedule-queue offsets) the master delivered: every one below
   * `watermark`, and those in `delivered` (RocketMQ's `delayOffset.json`). Absent from a master
   * that predates it.
   */
  delayProgress?: { watermark: number; delivered: number[] };
}

/** `admin broker promote`: refused while the old master answers, unless `force`. */
export interface PromoteRequest {
  force?: boolean;
  /** The role it takes. Default ASYNC_MASTER (a SYNC_MASTER with no slave answers SLAVE_NOT_AVAILABLE). */
  role?: 'ASYNC_MASTER' | 'SYNC_MASTER';
}

export interface PromoteResult {
  role: 'ASYNC_MASTER' | 'SYNC_MASTER';
  /** Its commit-log end when promoted: what it holds of the old master. */
  maxOffset: number;
  /** Where its slaves connect now. */
  haAddress: string;
}

export type AdminOperationName = keyof AdminOperations;
export type AdminOperationRequest<N extends AdminOperationName> = AdminOperations[N]['request'];
export type AdminOperationResponse<N extends AdminOperationName> = AdminOperations[N]['response'];

export const ADMIN_OPERATION_NAMES: readonly AdminOperationName[] = Object.freeze([
  'updateTopic',
  'listTopics',
  'storeStats',
  'consumeStats',
  'viewMessage',
  'queryMessageByKey',
  'resetOffset',
  'resendDeadLetter',
  'replicaSync',
  'promote',
] as const);

/**
 * The one rule for a broker that is shutting down, for every front end: the broker's own `CLOSED`
 * becomes a retriable `BROKER_UNAVAILABLE` (a client tries another broker, as after a refused
 * connection), with the broker's error as `cause`. Any other error is returned as it is.
 */
export function unavailableIfClosed(error: unknown, brokerName: string): unknown {
  if (!isRocketError(error, 'CLOSED')) return error;
  return new RocketError('BROKER_UNAVAILABLE', `broker "${brokerName}" is closed`, { cause: error });
}
