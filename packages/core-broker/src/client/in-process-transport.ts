import { RocketError } from '../common/errors';
import type { Broker } from '../broker/broker';
import {
  type OperationRequest,
  type OperationResponse,
  type PerBrokerOperationName,
  unavailableIfClosed,
} from '../message/operations';
import type { ClientChannel, QueueLockRequest, TopicRoute } from '../message/protocol';
import { OperationTransport, type Transport } from './transport';

/**
 * A {@link Transport} over brokers in this process: every call is a direct call of the named
 * broker's method of the same operation-table row (`message/operations.ts`), with no encoding. It behaves as a network transport would where a client can tell:
 *
 * - every method is asynchronous, so a broker's synchronous throw becomes a rejection;
 * - a broker name it does not know, and a broker that is closed, reject with `BROKER_UNAVAILABLE`
 *   (retriable, like a refused connection), carrying the broker's error as `cause`;
 * - `topicRoute` merges the route entries of every broker that has the topic, like a name server;
 * - `register` reaches every broker (and brokers added later); `unregister` leaves every broker.
 *
 * Messages are not copied: reads from the store already return fresh buffers, and requests are
 * not kept by the broker after a call (lock requests, which it keeps, are copied).
 */
export class InProcessTransport extends OperationTransport implements Transport {
  private readonly brokers = new Map<string, Broker>();
  private readonly channels = new Map<string, ClientChannel>();

  constructor(brokers: Broker | Iterable<Broker> = []) {
    super();
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

  async topicRoute(topic: string): Promise<TopicRoute> {
    const route: TopicRoute = { topic, brokers: [] };
    for (const broker of this.brokers.values()) {
      if (!broker.getTopic(topic)) continue;
      route.brokers.push(...broker.topicRoute({ topic }).brokers);
    }
    if (route.brokers.length === 0) {
      throw new RocketError('TOPIC_NOT_FOUND', `no broker serves topic "${topic}"`);
    }
    return route;
  }

  /** Every per-broker row of the operation table: the broker method of the same name. */
  invoke<N extends PerBrokerOperationName>(
    brokerName: string,
    name: N,
    request: OperationRequest<N>,
  ): Promise<OperationResponse<N>> {
    const copy = COPY_REQUEST[name] as ((r: OperationRequest<N>) => OperationRequest<N>) | undefined;
    const method = (b: Broker) => b[name] as (r: OperationRequest<N>) => OperationResponse<N>;
    return this.call(brokerName, (b) => method(b).call(b, copy ? copy(request) : request));
  }

  register(clientId: string, channel: ClientChannel): void {
    this.channels.set(clientId, channel);
    for (const broker of this.brokers.values()) broker.registerChannel(clientId, channel);
  }

  async unregister(clientId: string): Promise<void> {
    this.channels.delete(clientId);
    for (const broker of this.brokers.values()) broker.unregisterClient({ clientId });
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
      throw unavailableIfClosed(error, brokerName);
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

/** Rows whose request the broker keeps (the queue lock table): copied before the call. */
const COPY_REQUEST: {
  readonly [N in PerBrokerOperationName]?: (r: OperationRequest<N>) => OperationRequest<N>;
} = {
  lockQueues: copyLockRequest,
  unlockQueues: copyLockRequest,
};
