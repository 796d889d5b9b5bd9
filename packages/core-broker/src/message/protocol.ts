import type { MessageInput, MessageView } from './message';

/**
 * The operations a client asks of a broker, as plain data. The in-process transport hands these
 * objects to the broker as they are; the TCP transport encodes the same shapes. Keeping them here,
 * below both, lets the broker, the protocol codec and the clients agree without importing each other.
 */

/** Topic permissions, as RocketMQ's `PermName`. */
export const Permission = {
  /** Messages may be written (sent). */
  WRITE: 0b010,
  /** Messages may be read (pulled, popped). */
  READ: 0b100,
  READ_WRITE: 0b110,
  /** Neither: a topic being drained or retired. */
  DENY: 0,
} as const;

/** A topic's configuration on one broker (RocketMQ `TopicConfig`). */
export interface TopicConfig {
  topic: string;
  /** Queues consumers read from (RocketMQ `readQueueNums`). */
  readQueueCount: number;
  /** Queues producers write to (RocketMQ `writeQueueNums`). */
  writeQueueCount: number;
  /** Bit set of {@link Permission}. */
  permission: number;
  /** FIFO topic: producers pick the queue by message group, consumers keep per-group order. */
  fifo: boolean;
}

/** A topic to create or update (RocketMQ `updateAndCreateTopic`). */
/**
 * A topic to create, or the fields of one to change: an update changes only the fields given and
 * keeps the others. A read queue count that would hide stored messages is refused (see
 * `TopicRegistry`).
 */
export interface TopicInput {
  topic: string;
  /** Read and write queue count together; overridden by the two fields below. New topic default: the broker's `defaultQueueCount`. */
  queueCount?: number;
  /** Queues consumers read (RocketMQ `readQueueNums`); never below `writeQueueCount`. */
  readQueueCount?: number;
  /** Queues producers write (RocketMQ `writeQueueNums`). */
  writeQueueCount?: number;
  /** New topic default: read and write. */
  permission?: number;
  /** FIFO topic. New topic default: false. */
  fifo?: boolean;
}

/** Where a topic's queues live: one entry per broker that serves it. */
export interface TopicRoute {
  topic: string;
  brokers: Array<{
    brokerName: string;
    readQueueCount: number;
    writeQueueCount: number;
    permission: number;
    fifo: boolean;
    /**
     * `host:port` of the broker's master, when the route came from a name server; absent while
     * the name server lists only slaves of this broker name (its master is down).
     */
    address?: string;
    /**
     * The live slaves of this broker name (RocketMQ's `brokerAddrs` entries with `brokerId` ≠ 0),
     * lowest id first, when the route came from a name server. Consumers read from one of them
     * while the master is down; producers never write to them.
     */
    slaves?: Array<{ brokerId: number; address: string }>;
  }>;
}

/**
 * What a broker tells each name server when it registers, and again every 30 s (RocketMQ
 * `RegisterBrokerRequestHeader` + `TopicConfigSerializeWrapper`).
 */
export interface BrokerRegistration {
  /** RocketMQ `brokerClusterName`; default `DefaultCluster`. */
  clusterName: string;
  brokerName: string;
  /** 0 for the master; other ids are slaves (RocketNest brokers are all masters today). */
  brokerId: number;
  /** `host:port` clients connect to. */
  address: string;
  /**
   * `host:port` of a master's HA port, where its slaves connect (RocketMQ's `haServerAddr`); a
   * slave started without `--master-address` looks it up by broker name.
   */
  haAddress?: string;
  /** `host:port` of the broker's RocketMQ 5 gRPC endpoint (`--grpc-port`), when it serves one. */
  grpcAddress?: string;
  /** Every topic the broker serves, system topics (retry, dead letter) included. */
  topics: TopicConfig[];
}

/** The brokers a name server knows, by cluster (RocketMQ `ClusterInfo`). */
export interface ClusterInfo {
  clusters: Array<{
    clusterName: string;
    brokers: Array<{
      brokerName: string;
      brokerId: number;
      address: string;
      /** `host:port` of its RocketMQ 5 gRPC endpoint, when it serves one. */
      grpcAddress?: string;
      /** `host:port` of a master's HA port, for its slaves. */
      haAddress?: string;
      topicCount: number;
      /** Epoch ms of the broker's latest registration. */
      lastUpdateMs: number;
    }>;
  }>;
}

export type FilterKind = 'TAG' | 'SQL92';

/** What a consumer group reads from a topic (RocketMQ `SubscriptionData`). */
export interface Subscription {
  topic: string;
  kind: FilterKind;
  /** Tag expression (`*`, `a || b`) or SQL92 condition. */
  expression: string;
}

export interface SendRequest {
  producerGroup: string;
  topic: string;
  /** Queue to write to; omitted: the broker picks (round robin, or by message group on FIFO topics). */
  queueId?: number;
  /** One message, or a batch written back to back to one queue. */
  messages: readonly MessageInput[];
  bornTimestampMs: number;
  bornHost?: string;
  /** Half (prepared) messages of a transaction. */
  transactional?: boolean;
}

export interface SentMessage {
  msgId: string;
  queueId: number;
  queueOffset: number;
  /** Present for transactional sends: what `endTransaction` refers to. */
  transactionId?: string;
}

/**
 * How far a stored send is replicated (RocketMQ `SendStatus`). `SEND_OK`: stored as the broker's
 * role requires. From a `SYNC_MASTER` only: `FLUSH_SLAVE_TIMEOUT`, stored on the master but no
 * slave confirmed it within `syncFlushTimeoutMs`; `SLAVE_NOT_AVAILABLE`, stored on the master
 * with no slave (in sync) to copy it. Neither is a failure of the send: the message is stored and
 * will be delivered, but only one copy was confirmed.
 */
export type SendStatus = 'SEND_OK' | 'FLUSH_SLAVE_TIMEOUT' | 'SLAVE_NOT_AVAILABLE';

export const SEND_STATUSES: readonly SendStatus[] = Object.freeze([
  'SEND_OK',
  'FLUSH_SLAVE_TIMEOUT',
  'SLAVE_NOT_AVAILABLE',
] as const);

export interface SendResponse {
  brokerName: string;
  topic: string;
  messages: SentMessage[];
  /** Absent: `SEND_OK`. */
  status?: SendStatus;
}

export interface PullRequest {
  consumerGroup: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  maxCount: number;
  /** Filter applied on the broker; omitted: everything. */
  subscription?: Subscription;
  /** Long polling: wait up to this long for a first message when none is there. 0 = answer at once. */
  suspendTimeoutMs: number;
  /** Offset the consumer has processed up to, committed with the pull (RocketMQ's commitOffset flag). */
  commitOffset?: number;
  /**
   * The requester takes the messages as stored records (`PullResponse.records`): set by the TCP
   * codec of a client that decodes that form, never by hand. Absent: `messages` only.
   */
  acceptsRecords?: boolean;
}

export type PullStatus = 'FOUND' | 'NO_NEW_MESSAGE' | 'NO_MATCHED_MESSAGE' | 'OFFSET_ILLEGAL';

/** Messages as their commit-log records' bytes (`message/record-codec.ts`), from one store. */
export interface StoredRecords {
  /** The store's id: a message's id is this and its record's commit-log offset. */
  storeId: string;
  records: Buffer[];
}

export interface PullResponse {
  status: PullStatus;
  /** The messages; empty when the broker answered with `records` instead. */
  messages: MessageView[];
  /**
   * Broker side only, for a request with `acceptsRecords`: the messages as stored, sent on as
   * they are; the receiving codec turns them into `messages`.
   */
  records?: StoredRecords;
  /** Where the next pull of this queue starts. */
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
}

export type MessageModel = 'CLUSTERING' | 'BROADCASTING';
export type ConsumeType = 'PUSH' | 'PULL' | 'SIMPLE';

export interface ConsumerHeartbeat {
  group: string;
  messageModel: MessageModel;
  consumeType: ConsumeType;
  subscriptions: Subscription[];
}

/** Sent by every client periodically: who it is and which groups it belongs to. */
export interface HeartbeatRequest {
  clientId: string;
  producerGroups: string[];
  consumers: ConsumerHeartbeat[];
}

/** A consumer's report that it failed to consume a message (RocketMQ `CONSUMER_SEND_MSG_BACK`). */
export interface SendBackRequest {
  consumerGroup: string;
  msgId: string;
  /** Retry after this many ms instead of the next backoff level. */
  delayMs?: number;
  /** Overrides the group's max reconsume times. */
  maxReconsumeTimes?: number;
}

export type TransactionResolution = 'COMMIT' | 'ROLLBACK' | 'UNKNOWN';

export interface EndTransactionRequest {
  producerGroup: string;
  transactionId: string;
  resolution: TransactionResolution;
  /** True when answering the broker's check-back rather than ending the local transaction. */
  fromCheck: boolean;
}

/** The broker asks a producer of the group how a transaction ended (RocketMQ check-back). */
export interface TransactionCheck {
  /** The broker asking, and holding the half message: the answer goes back to it. */
  brokerName: string;
  producerGroup: string;
  transactionId: string;
  message: MessageView;
  checkTimes: number;
}

export interface PopRequest {
  consumerGroup: string;
  topic: string;
  subscription?: Subscription;
  /** At most 32 (RocketMQ's receive batch limit). */
  maxCount: number;
  invisibleTimeMs: number;
  /** Long polling: wait up to this long when nothing is ready. */
  pollTimeoutMs: number;
}

export interface PoppedMessage {
  message: MessageView;
  /** Opaque; acks or changes the invisible time of this delivery only. */
  receiptHandle: string;
  /** 1 for the first delivery. */
  deliveryAttempt: number;
}

export interface AckRequest {
  consumerGroup: string;
  topic: string;
  receiptHandle: string;
}

export interface ChangeInvisibleRequest extends AckRequest {
  invisibleTimeMs: number;
}

/** What a broker can tell a connected client without being asked. */
export interface ClientChannel {
  /** Asks a producer how a transaction ended; it answers with `endTransaction({ fromCheck: true })`. */
  checkTransaction?(check: TransactionCheck): void;
  /** Tells a consumer its group's members changed, so it rebalances now (RocketMQ `NOTIFY_CONSUMER_IDS_CHANGED`). */
  consumerIdsChanged?(group: string): void;
  /** Tells a consumer its group's offsets on a broker were moved (RocketMQ `RESET_CONSUMER_CLIENT_OFFSET`). */
  resetOffset?(notice: OffsetResetNotice): void;
}

/** Where a push consumer stands on one queue (see `consumeProgressOf` in `client/consume-progress.ts`). */
export interface ConsumeProgress {
  group: string;
  brokerName: string;
  topic: string;
  queueId: number;
  /** The next queue offset it will pull. */
  nextOffset: number;
  /** The lowest offset not yet consumed (its committed position). */
  consumeOffset: number;
  /** Messages pulled and not yet finished (cached or in a listener). */
  pending: number;
}

/** `topicRoute`: this broker's part of a topic's route. */
export interface TopicRouteRequest {
  topic: string;
}

/** A queue of a topic on the broker a request goes to (`minOffset`, `maxOffset`). */
export interface QueueRequest {
  topic: string;
  queueId: number;
}

/** `searchOffset`: the first queue offset stored at or after `timestampMs`. */
export interface SearchOffsetRequest extends QueueRequest {
  timestampMs: number;
}

/** A group's position on one queue (`queryOffset`). */
export interface GroupQueueRequest {
  group: string;
  topic: string;
  queueId: number;
}

/** `commitOffset`: the group has consumed everything before `offset`. */
export interface CommitOffsetRequest extends GroupQueueRequest {
  offset: number;
}

/** `consumerIds`: the members of a consumer group. */
export interface GroupRequest {
  group: string;
}

/** `unregisterClient`: the client is shutting down. */
export interface ClientIdRequest {
  clientId: string;
}

/** A queue of a topic on the broker a request goes to. */
export interface QueueRef {
  topic: string;
  queueId: number;
}

/** Lock or unlock queues for a consumer group's orderly consumption (RocketMQ `LOCK_BATCH_MQ`). */
export interface QueueLockRequest {
  group: string;
  clientId: string;
  queues: QueueRef[];
}

/** The offsets a group was reset to on one broker, by queue. */
export interface OffsetResetNotice {
  group: string;
  topic: string;
  brokerName: string;
  offsets: Array<{ queueId: number; offset: number }>;
}

/** A stored message as admin tools see it (JSON on the wire: the body travels as base64). */
export interface AdminMessage {
  msgId: string;
  brokerName: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  tag?: string;
  keys: string[];
  properties: Record<string, string>;
  messageGroup?: string;
  bornTimestampMs: number;
  bornHost: string;
  storeTimestampMs: number;
  reconsumeTimes: number;
  bodyBase64: string;
}

/** One queue of a consumer group's progress (see `Broker.consumeStats`). */
export interface ConsumeStatsRow {
  topic: string;
  queueId: number;
  /** The queue offset the next message stored gets. */
  brokerOffset: number;
  /** The group's committed offset; absent when it never committed one. */
  consumerOffset?: number;
  /** Messages stored and not yet consumed by the group. */
  lag: number;
}
