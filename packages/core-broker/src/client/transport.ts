import {
  PER_BROKER_OPERATION_NAMES,
  type OperationRequest,
  type OperationResponse,
  type PerBrokerOperationName,
} from '../message/operations';
import type { ClientChannel, TopicRoute } from '../message/protocol';

/**
 * The operations a client addresses to one broker, one method per row of the operation table
 * (`message/operations.ts`): `transport[name](brokerName, request)` resolves with the row's response.
 */
export type BrokerCalls = {
  [N in PerBrokerOperationName]: (
    brokerName: string,
    request: OperationRequest<N>,
  ) => Promise<OperationResponse<N>>;
};

/**
 * How clients reach brokers. Every client (producer, consumers) talks through this interface
 * only, so the same client code runs in process (`InProcessTransport`, direct calls) and over TCP
 * (the network transport, one connection per broker, routes from name servers). Calls name the
 * broker by `brokerName`, as found in a topic's route. Failures reject with `RocketError`s whose
 * `retriable` flag tells the client whether to try again (or another broker).
 *
 * The per-broker calls ({@link BrokerCalls}) are the operation table's rows; the rest is how a
 * client finds brokers and lets them reach it.
 */
export interface Transport extends BrokerCalls {
  /** Which brokers serve `topic`, with their queue counts. Rejects `TOPIC_NOT_FOUND` when none does. */
  topicRoute(topic: string): Promise<TopicRoute>;
  /** Lets brokers reach this client (check-backs, rebalance notices). */
  register(clientId: string, channel: ClientChannel): void;
  /** The client is shutting down: brokers drop it from its groups. */
  unregister(clientId: string): Promise<void>;
}

/**
 * The base of a transport whose per-broker calls all go through one `invoke`: it gets one method
 * per row of the operation table, so a row added to the table is a call on every such transport.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- the methods are added below, from the table
export abstract class OperationTransport {
  /** Runs operation `name` on broker `brokerName`. */
  abstract invoke<N extends PerBrokerOperationName>(
    brokerName: string,
    name: N,
    request: OperationRequest<N>,
  ): Promise<OperationResponse<N>>;
}

// the methods are the table's rows, each forwarding to invoke()
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface OperationTransport extends BrokerCalls {}

for (const name of PER_BROKER_OPERATION_NAMES) {
  Object.defineProperty(OperationTransport.prototype, name, {
    configurable: true,
    writable: true,
    value: function (this: OperationTransport, brokerName: string, request: never) {
      return this.invoke(brokerName, name, request);
    },
  });
}
