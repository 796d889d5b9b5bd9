import { RocketError, isRocketError } from '../common/errors';
import {
  type AdminOperationName,
  type AdminOperationRequest,
  type AdminOperationResponse,
  OPERATIONS,
  type OperationRequest,
  type OperationResponse,
  type PerBrokerOperationName,
} from '../message/operations';
import type { ClientChannel, ClusterInfo, TopicRoute } from '../message/protocol';
import {
  WIRE_ADMIN_OPERATIONS,
  WIRE_CHANNEL_OPERATIONS,
  WIRE_NAME_SERVER_OPERATIONS,
  WIRE_OPERATIONS,
  type WireOperation,
} from '../remoting/operation-codecs';
import type { Codec, Payload } from '../remoting/codec';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  RemotingClient,
  type RemotingClientOptions,
  parseAddress,
} from '../remoting/remoting-client';
import { RequestCode, requestCodeName } from '../remoting/request-codes';
import { OperationTransport, type Transport } from './transport';

export interface TcpTransportOptions extends Omit<RemotingClientOptions, 'onServerRequest'> {
  /**
   * Name servers (`host:port` each) that give topic routes and broker addresses; the transport
   * asks one and moves to the next when it does not answer. (RocketMQ `namesrvAddr`)
   */
  nameServers?: readonly string[];
  /**
   * Address (`host:port`) of each broker by broker name, for a standalone broker without name
   * servers (routes are then asked of every listed broker and merged).
   */
  brokers?: Record<string, string>;
}

/**
 * A {@link Transport} over the remoting protocol (`RemotingClient`): one TCP connection per broker,
 * opened at first use. Error responses reject with the broker's own `RocketError` (same code,
 * message, retriable flag); a broker it has no address for, or cannot reach, rejects with retriable
 * `BROKER_UNAVAILABLE`, as `InProcessTransport` does.
 *
 * - `topicRoute` asks a name server (the one that answered last; on no answer, the next in the
 *   list; `NAME_SERVER_UNAVAILABLE` when none does) and learns the brokers' addresses from the
 *   route; without name servers it asks every listed broker for its part and merges them;
 * - long pulls and pops wait `requestTimeoutMs` beyond their suspend/poll time;
 * - `register` keeps the channel here; a heartbeat makes its connection the way a broker reaches
 *   this process, and the broker's one-way requests (check transaction, consumer ids changed,
 *   reset offset) go to every registered channel — each client ignores groups not its own;
 * - `endTransaction` from a check-back is one-way, as in RocketMQ.
 *
 * Every per-broker call is a row of the operation table (`message/operations.ts`), sent with the
 * row's request code and codecs (`WIRE_OPERATIONS`, `remoting/operation-codecs.ts`).
 */
export class TcpTransport extends OperationTransport implements Transport {
  private readonly addresses = new Map<string, string>();
  private readonly channels = new Map<string, ClientChannel>();
  private readonly client: RemotingClient;
  private readonly requestTimeoutMs: number;
  private readonly nameServers: readonly string[];
  /** Index of the name server asked first: the one that answered last. */
  private nameServerIndex: number;

  constructor(options: TcpTransportOptions) {
    super();
    const { brokers, nameServers, ...remoting } = options ?? {};
    for (const [name, address] of Object.entries(brokers ?? {})) this.addBroker(name, address);
    if (nameServers !== undefined && !Array.isArray(nameServers)) {
      throw new RocketError(
        'INVALID_OPTION',
        'TcpTransport option nameServers must be an array of host:port',
      );
    }
    for (const address of nameServers ?? []) parseAddress(address);
    this.nameServers = [...(nameServers ?? [])];
    if (this.nameServers.length === 0 && this.addresses.size === 0) {
      throw new RocketError(
        'INVALID_OPTION',
        'TcpTransport needs nameServers (a cluster) or brokers (a standalone broker by name and address)',
      );
    }
    // clients of one application spread over the name servers, as RocketMQ's random start
    this.nameServerIndex = Math.floor(Math.random() * Math.max(1, this.nameServers.length));
    this.requestTimeoutMs = remoting.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.client = new RemotingClient({
      ...remoting,
      onServerRequest: (code, payload) => this.onServerRequest(code, payload),
    });
  }

  /** Adds (or moves) a broker's address. */
  addBroker(brokerName: string, address: string): void {
    parseAddress(address);
    this.addresses.set(brokerName, address);
  }

  /** Forgets a broker: calls to it reject with `BROKER_UNAVAILABLE`. */
  removeBroker(brokerName: string): boolean {
    return this.addresses.delete(brokerName);
  }

  brokerNames(): string[] {
    return [...this.addresses.keys()];
  }

  /** The remoting client underneath (in-flight counts, connection state). */
  get remoting(): RemotingClient {
    return this.client;
  }

  async topicRoute(topic: string): Promise<TopicRoute> {
    if (this.nameServers.length > 0) return this.routeFromNameServers(topic);
    const route: TopicRoute = { topic, brokers: [] };
    const parts = await Promise.allSettled(
      this.brokerNames().map((name) => this.call(name, WIRE_OPERATIONS.topicRoute, { topic })),
    );
    let failure: unknown;
    for (const part of parts) {
      if (part.status === 'fulfilled') route.brokers.push(...part.value.brokers);
      else if (!isRocketError(part.reason, 'TOPIC_NOT_FOUND')) failure ??= part.reason;
    }
    if (route.brokers.length === 0) {
      if (failure !== undefined) throw failure;
      throw new RocketError('TOPIC_NOT_FOUND', `no broker serves topic "${topic}"`);
    }
    return route;
  }

  /** Every per-broker row of the operation table: its request code and codecs, one request frame. */
  async invoke<N extends PerBrokerOperationName>(
    brokerName: string,
    name: N,
    request: OperationRequest<N>,
  ): Promise<OperationResponse<N>> {
    const wire = WIRE_OPERATIONS[name] as WireOperation<OperationRequest<N>, OperationResponse<N>>;
    if (wire.oneWay?.(request)) {
      const payload = this.encode(wire.code, wire.request, request);
      await this.client.oneWay(await this.resolve(brokerName), wire.code, payload);
      return undefined as OperationResponse<N>;
    }
    const waitMs = (OPERATIONS[name].waitMs as ((r: OperationRequest<N>) => number) | undefined)?.(request);
    return this.call(brokerName, wire, request, waitMs);
  }

  register(clientId: string, channel: ClientChannel): void {
    this.channels.set(clientId, channel);
  }

  /** Leaves every known broker; unreachable brokers drop the client when its connection closes anyway. */
  async unregister(clientId: string): Promise<void> {
    this.channels.delete(clientId);
    const results = await Promise.allSettled(
      this.brokerNames().map((name) => this.call(name, WIRE_OPERATIONS.unregisterClient, { clientId })),
    );
    for (const r of results) {
      if (r.status === 'rejected' && !isRocketError(r.reason, 'BROKER_UNAVAILABLE')) throw r.reason;
    }
  }

  private async routeFromNameServers(topic: string): Promise<TopicRoute> {
    const route = await this.askNameServers(`topic "${topic}"`, WIRE_NAME_SERVER_OPERATIONS.topicRoute, {
      topic,
    });
    for (const b of route.brokers) if (b.address !== undefined) this.addBroker(b.brokerName, b.address);
    return route;
  }

  /**
   * Asks the name server that answered last, then the next ones in turn while they do not answer
   * (an answer, even an error such as `TOPIC_NOT_FOUND`, is the cluster's answer).
   */
  private async askNameServers<Req, Res>(
    what: string,
    op: WireOperation<Req, Res>,
    request: Req,
  ): Promise<Res> {
    const code = op.code;
    const payload = this.encode(code, op.request, request);
    const failures: string[] = [];
    let lastError: unknown;
    for (let i = 0; i < this.nameServers.length; i++) {
      const index = (this.nameServerIndex + i) % this.nameServers.length;
      const nameServer = this.nameServers[index]!;
      let response: Payload;
      try {
        response = await this.client.request(nameServer, code, payload);
      } catch (error) {
        if (!isRocketError(error) || !error.retriable) throw error;
        failures.push(`${nameServer}: ${error.message}`);
        lastError = error;
        continue;
      }
      this.nameServerIndex = index;
      return op.response.decode(response);
    }
    throw new RocketError(
      'NAME_SERVER_UNAVAILABLE',
      `no name server answered for ${what} (${failures.join('; ')})`,
      { cause: lastError },
    );
  }

  /**
   * The brokers of the cluster by name server (masters and slaves), or, without name servers, the
   * listed brokers as one cluster named `standalone`.
   */
  async clusterInfo(): Promise<ClusterInfo> {
    if (this.nameServers.length > 0) {
      return this.askNameServers('the cluster', WIRE_NAME_SERVER_OPERATIONS.clusterInfo, undefined);
    }
    const brokers = [...this.addresses].map(([brokerName, address]) => ({
      brokerName,
      brokerId: 0,
      address,
      topicCount: 0,
      lastUpdateMs: 0,
    }));
    return { clusters: [{ clusterName: 'standalone', brokers }] };
  }

  /** Runs an admin operation (the admin table of `message/operations.ts`) on one broker; what `RocketAdmin` is built on. */
  admin<N extends AdminOperationName>(
    brokerName: string,
    name: N,
    request: AdminOperationRequest<N>,
  ): Promise<AdminOperationResponse<N>> {
    const wire = WIRE_ADMIN_OPERATIONS[name] as WireOperation<
      AdminOperationRequest<N>,
      AdminOperationResponse<N>
    >;
    return this.call(brokerName, wire, request);
  }

  /** Closes every connection; pending calls reject with `BROKER_UNAVAILABLE`. */
  close(): Promise<void> {
    return this.client.close();
  }

  /**
   * The broker's address: known already, or learned from the name servers' cluster view (a broker
   * named before any route mentioned it). Unknown brokers are `BROKER_UNAVAILABLE`.
   */
  private async resolve(brokerName: string): Promise<string> {
    let address = this.addresses.get(brokerName);
    if (address === undefined && this.nameServers.length > 0) {
      const info = await this.askNameServers(
        `the address of broker "${brokerName}"`,
        WIRE_NAME_SERVER_OPERATIONS.clusterInfo,
        undefined,
      );
      for (const cluster of info.clusters) {
        for (const b of cluster.brokers) if (b.brokerId === 0) this.addBroker(b.brokerName, b.address);
      }
      address = this.addresses.get(brokerName);
    }
    if (address === undefined) {
      throw new RocketError(
        'BROKER_UNAVAILABLE',
        `broker "${brokerName}" has no known address on this transport` +
          (this.nameServers.length > 0 ? ' and no name server knows it' : ''),
      );
    }
    return address;
  }

  private encode<T>(code: number, codec: Codec<T>, value: T): Payload {
    try {
      return codec.encode(value);
    } catch (error) {
      if (isRocketError(error)) throw error;
      throw new RocketError('INVALID_ARGUMENT', `cannot encode ${requestCodeName(code)}`, { cause: error });
    }
  }

  private async call<Req, Res>(
    brokerName: string,
    op: WireOperation<Req, Res>,
    request: Req,
    extraTimeoutMs = 0,
  ): Promise<Res> {
    const address = this.addresses.get(brokerName) ?? (await this.resolve(brokerName));
    const payload = this.encode(op.code, op.request, request);
    const response = await this.client.request(address, op.code, payload, {
      timeoutMs: this.requestTimeoutMs + extraTimeoutMs,
    });
    return op.response.decode(response);
  }

  private onServerRequest(code: number, payload: Payload): void {
    switch (code) {
      case RequestCode.CHECK_TRANSACTION_STATE: {
        const check = WIRE_CHANNEL_OPERATIONS.checkTransaction.request.decode(payload);
        for (const c of this.channels.values()) c.checkTransaction?.(check);
        return;
      }
      case RequestCode.NOTIFY_CONSUMER_IDS_CHANGED: {
        const { group } = WIRE_CHANNEL_OPERATIONS.consumerIdsChanged.request.decode(payload);
        for (const c of this.channels.values()) c.consumerIdsChanged?.(group);
        return;
      }
      case RequestCode.RESET_CONSUMER_CLIENT_OFFSET: {
        const notice = WIRE_CHANNEL_OPERATIONS.resetOffset.request.decode(payload);
        for (const c of this.channels.values()) c.resetOffset?.(notice);
        return;
      }
      default:
        throw new RocketError('PROTOCOL_ERROR', `unexpected request ${requestCodeName(code)} from a broker`);
    }
  }
}
