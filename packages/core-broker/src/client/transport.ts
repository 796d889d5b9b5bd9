import type {
  AckRequest,
  ChangeInvisibleRequest,
  ClientChannel,
  EndTransactionRequest,
  HeartbeatRequest,
  PoppedMessage,
  PopRequest,
  PullRequest,
  PullResponse,
  QueueLockRequest,
  QueueRef,
  SendBackRequest,
  SendRequest,
  SendResponse,
  TopicRoute,
} from '../message/protocol';

/**
 * How clients reach brokers. Every client (producer, consumers) talks through this interface
 * only, so the same client code runs in process (`InProcessTransport`, direct calls) and over TCP
 * (the network transport, one connection per broker, routes from name servers). Calls name the
 * broker by `brokerName`, as found in a topic's route. Failures reject with `RocketError`s whose
 * `retriable` flag tells the client whether to try again (or another broker).
 */
export interface Transport {
  /** Which brokers serve `topic`, with their queue counts. Rejects `TOPIC_NOT_FOUND` when none does. */
  topicRoute(topic: string): Promise<TopicRoute>;
  send(brokerName: string, request: SendRequest): Promise<SendResponse>;
  pull(brokerName: string, request: PullRequest): Promise<PullResponse>;
  /** A group's committed offset for a queue, or `undefined` when it never committed one. */
  queryOffset(brokerName: string, group: string, topic: string, queueId: number): Promise<number | undefined>;
  commitOffset(
    brokerName: string,
    group: string,
    topic: string,
    queueId: number,
    offset: number,
  ): Promise<void>;
  minOffset(brokerName: string, topic: string, queueId: number): Promise<number>;
  maxOffset(brokerName: string, topic: string, queueId: number): Promise<number>;
  /** First queue offset stored at or after `timestampMs`. */
  searchOffset(brokerName: string, topic: string, queueId: number, timestampMs: number): Promise<number>;
  heartbeat(brokerName: string, request: HeartbeatRequest): Promise<void>;
  /** Members of a consumer group as the broker knows them, sorted. */
  consumerIds(brokerName: string, group: string): Promise<string[]>;
  sendBack(brokerName: string, request: SendBackRequest): Promise<{ deadLettered: boolean }>;
  endTransaction(brokerName: string, request: EndTransactionRequest): Promise<void>;
  pop(brokerName: string, request: PopRequest): Promise<PoppedMessage[]>;
  ack(brokerName: string, request: AckRequest): Promise<void>;
  changeInvisibleTime(
    brokerName: string,
    request: ChangeInvisibleRequest,
  ): Promise<{ receiptHandle: string }>;
  /** Locks queues for orderly consumption; resolves with the queues the client now holds. */
  lockQueues(brokerName: string, request: QueueLockRequest): Promise<QueueRef[]>;
  /** Releases queues the client holds. */
  unlockQueues(brokerName: string, request: QueueLockRequest): Promise<void>;
  /** Lets brokers reach this client (check-backs, rebalance notices). */
  register(clientId: string, channel: ClientChannel): void;
  /** The client is shutting down: brokers drop it from its groups. */
  unregister(clientId: string): Promise<void>;
}
