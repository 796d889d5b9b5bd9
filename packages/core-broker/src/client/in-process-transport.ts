import { RocketError, isRocketError } from '../common/errors';
import type { Broker } from '../broker/broker';
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
import type { Transport } from './transport';

/**
 * A {@link Transport} over brokers in this process: every call is a direct method call on the
 * named broker, with no encoding. It behaves as a network transport would where a client can tell:
 *
 * - every method is asynchronous, so a broker's synchronous throw becomes a rejection;
 * - a broker name it does not know, and a broker that is closed, reject with `BROKER_UNAVAILABLE`
 *   (retriable, like a refused connection), carrying the broker's error as `cause`;
 * - `topicRoute` merges the route entries of every broker that has the topic, like a name server;
 * - `register` reaches every broker (and brokers added later); `unregister` leaves every broker.
 *
 * Messages are not copied: reads from the store already return fresh buffers, and requests are
 * not kept by the broker after a call.
 */
export class InProcessTransport implements Transport {
  private readonly brokers = new Map<string, Broker>();
  private readonly channels = new Map<string, ClientChannel>();

  constructor(brokers: Broker | Iterable<Broker> = []) {
    for (const broker of isBroker(brokers) ? [brokers] : brokers) this.addBroker(broker);
  }

  /** Adds a broker (clients find it through routes); registered clients are registered on it too. */
  addBroker(broker: Broker): void {
    if (this.brokers.has(broker.brokerName)) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `a broker named "${broker.brokerName}" is already on this transport`,
      );
    }
    this.brokers.set(broker.brokerName, broker);
    for (const [clientId, channel] of this.channels) broker.registerChannel(clientId, channel);
  }

  /** Takes a broker away, as if its host went down: calls to it reject with `BROKER_UNAVAILABLE`. */
  removeBroker(brokerName: string): boolean {
    return this.brokers.delete(brokerName);
  }

  /** Names of the brokers on this transport. */
  brokerNames(): string[] {
    return [...this.brokers.keys()];
  }

  /** The brokers themselves: they run in this process (integrations create development topics on them). */
  localBrokers(): Broker[] {
    return [...this.brokers.values()];
  }

  async topicRoute(topic: string): Promise<TopicRoute> {
    const route: TopicRoute = { topic, brokers: [] };
    for (const broker of this.brokers.values()) {
      if (!broker.getTopic(topic)) continue;
      route.brokers.push(...broker.topicRoute(topic).brokers);
    }
    if (route.brokers.length === 0) {
      throw new RocketError('TOPIC_NOT_FOUND', `no broker serves topic "${topic}"`);
    }
    return route;
  }

  send(brokerName: string, request: SendRequest): Promise<SendResponse> {
    return this.call(brokerName, (b) => b.send(request));
  }

  pull(brokerName: string, request: PullRequest): Promise<PullResponse> {
    return this.call(brokerName, (b) => b.pull(request));
  }

  queryOffset(
    brokerName: string,
    group: string,
    topic: string,
    queueId: number,
  ): Promise<number | undefined> {
    return this.call(brokerName, (b) => b.queryOffset(group, topic, queueId));
  }

  commitOffset(
    brokerName: string,
    group: string,
    topic: string,
    queueId: number,
    offset: number,
  ): Promise<void> {
    return this.call(brokerName, (b) => b.commitOffset(group, topic, queueId, offset));
  }

  minOffset(brokerName: string, topic: string, queueId: number): Promise<number> {
    return this.call(brokerName, (b) => b.minOffset(topic, queueId));
  }

  maxOffset(brokerName: string, topic: string, queueId: number): Promise<number> {
    return this.call(brokerName, (b) => b.maxOffset(topic, queueId));
  }

  searchOffset(brokerName: string, topic: string, queueId: number, timestampMs: number): Promise<number> {
    return this.call(brokerName, (b) => b.searchOffset(topic, queueId, timestampMs));
  }

  lockQueues(brokerName: string, request: QueueLockRequest): Promise<QueueRef[]> {
    return this.call(brokerName, (b) => b.lockQueues(copyLockRequest(request)));
  }

  unlockQueues(brokerName: string, request: QueueLockRequest): Promise<void> {
    return this.call(brokerName, (b) => b.unlockQueues(copyLockRequest(request)));
  }

  heartbeat(brokerName: string, request: HeartbeatRequest): Promise<void> {
    return this.call(brokerName, (b) => b.heartbeat(request));
  }

  consumerIds(brokerName: string, group: string): Promise<string[]> {
    return this.call(brokerName, (b) => b.consumerIds(group));
  }

  sendBack(brokerName: string, request: SendBackRequest): Promise<{ deadLettered: boolean }> {
    return this.call(brokerName, (b) => b.sendBack(request));
  }

  endTransaction(brokerName: string, request: EndTransactionRequest): Promise<void> {
    return this.call(brokerName, (b) => b.endTransaction(request));
  }

  pop(brokerName: string, request: PopRequest): Promise<PoppedMessage[]> {
    return this.call(brokerName, (b) => b.pop(request));
  }

  ack(brokerName: string, request: AckRequest): Promise<void> {
    return this.call(brokerName, (b) => b.ack(request));
  }

  changeInvisibleTime(
    brokerName: string,
    request: ChangeInvisibleRequest,
  ): Promise<{ receiptHandle: string }> {
    return this.call(brokerName, (b) => b.changeInvisibleTime(request));
  }

  register(clientId: string, channel: ClientChannel): void {
    this.channels.set(clientId, channel);
    for (const broker of this.brokers.values()) broker.registerChannel(clientId, channel);
  }

  async unregister(clientId: string): Promise<void> {
    this.channels.delete(clientId);
    for (const broker of this.brokers.values()) broker.unregisterClient(clientId);
  }

  private async call<T>(brokerName: string, operation: (broker: Broker) => T | Promise<T>): Promise<T> {
    const broker = this.brokers.get(brokerName);
    if (!broker) {
      throw new RocketError(
        'BROKER_UNAVAILABLE',
        `broker "${brokerName}" is not reachable on this transport`,
      );
    }
    try {
      return await operation(broker);
    } catch (error) {
      if (isRocketError(error, 'CLOSED')) {
        throw new RocketError('BROKER_UNAVAILABLE', `broker "${brokerName}" is closed`, { cause: error });
      }
      throw error;
    }
  }
}

function isBroker(value: Broker | Iterable<Broker>): value is Broker {
  return typeof (value as Broker).brokerName === 'string' && typeof (value as Broker).send === 'function';
}

/** The broker keeps nothing the caller can change later: queue lists are copied. */
function copyLockRequest(request: QueueLockRequest): QueueLockRequest {
  return { ...request, queues: request.queues.map((q) => ({ topic: q.topic, queueId: q.queueId })) };
}
