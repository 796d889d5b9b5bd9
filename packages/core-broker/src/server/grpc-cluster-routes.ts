import type { Clock } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import type { ClusterInfo, TopicRoute } from '../message/protocol';
import { RemotingClient, type RemotingClientOptions } from '../remoting/remoting-client';
import { WIRE_NAME_SERVER_OPERATIONS } from '../remoting/operation-codecs';

/** How long a topic's gRPC route is reused before the name servers are asked again. */
export const GRPC_ROUTE_CACHE_MS = 5_000;
/** Most topics whose gRPC route is cached at once (the oldest entry goes first). */
export const MAX_CACHED_GRPC_ROUTES = 1024;
/** How long one name-server question may take before the next name server is asked. */
export const GRPC_ROUTE_LOOKUP_TIMEOUT_MS = 3_000;

/** One broker of a topic's route, as a gRPC client is told of it. */
export interface GrpcRouteBroker {
  brokerName: string;
  /** `host:port` of the broker's RocketMQ 5 gRPC endpoint. */
  grpcAddress: string;
  readQueueCount: number;
  writeQueueCount: number;
  permission: number;
  fifo: boolean;
}

/** Where a gRPC endpoint learns which brokers serve a topic, each with its own gRPC endpoint. */
export interface GrpcClusterRoutes {
  /** The topic's brokers that serve gRPC; empty when no name server knows the topic. */
  lookup(topic: string): Promise<GrpcRouteBroker[]>;
  close(): Promise<void>;
}

/**
 * Routes for a broker in a cluster: the topic's route and the cluster view from the name servers
 * (the first that answers), joined by broker name so that each broker appears with the gRPC
 * endpoint it registered (`grpcAddress`). Brokers without one are left out: a gRPC client could not
 * reach them. Answers are cached for {@link GRPC_ROUTE_CACHE_MS}.
 */
export class NameServerGrpcRoutes implements GrpcClusterRoutes {
  private readonly client: RemotingClient;
  private readonly cache = new Map<string, { atMs: number; brokers: GrpcRouteBroker[] }>();

  constructor(
    private readonly nameServers: readonly string[],
    private readonly clock: Clock,
    remoting: Omit<RemotingClientOptions, 'onServerRequest' | 'clock'> = {},
  ) {
    if (nameServers.length === 0) {
      throw new RocketError('INVALID_OPTION', 'gRPC cluster routes need at least one name server');
    }
    this.client = new RemotingClient({ ...remoting, clock });
  }

  async lookup(topic: string): Promise<GrpcRouteBroker[]> {
    const now = this.clock.now();
    const cached = this.cache.get(topic);
    if (cached && now - cached.atMs < GRPC_ROUTE_CACHE_MS) return cached.brokers;
    let route: TopicRoute;
    try {
      route = await this.ask(WIRE_NAME_SERVER_OPERATIONS.topicRoute, { topic });
    } catch (error) {
      if (isRocketError(error) && error.code === 'TOPIC_NOT_FOUND') return [];
      throw error;
    }
    const cluster: ClusterInfo = await this.ask(WIRE_NAME_SERVER_OPERATIONS.clusterInfo, undefined);
    const grpcOf = new Map<string, string>();
    for (const c of cluster.clusters)
      for (const b of c.brokers)
        if (b.brokerId === 0 && b.grpcAddress) grpcOf.set(b.brokerName, b.grpcAddress);
    const brokers: GrpcRouteBroker[] = [];
    for (const b of route.brokers) {
      const grpcAddress = grpcOf.get(b.brokerName);
      if (grpcAddress === undefined) continue;
      brokers.push({
        brokerName: b.brokerName,
        grpcAddress,
        readQueueCount: b.readQueueCount,
        writeQueueCount: b.writeQueueCount,
        permission: b.permission,
        fifo: b.fifo,
      });
    }
    brokers.sort((a, b) => (a.brokerName < b.brokerName ? -1 : a.brokerName > b.brokerName ? 1 : 0));
    this.cache.delete(topic);
    if (this.cache.size >= MAX_CACHED_GRPC_ROUTES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(topic, { atMs: now, brokers });
    return brokers;
  }

  close(): Promise<void> {
    this.cache.clear();
    return this.client.close();
  }

  /** Asks each name server in turn until one answers (a retriable failure moves to the next). */
  private async ask<Req, Res>(
    op: {
      code: number;
      request: { encode(v: Req): unknown };
      response: { decode(p: never): Res };
    },
    request: Req,
  ): Promise<Res> {
    let last: unknown;
    for (const nameServer of this.nameServers) {
      try {
        const payload = await this.client.request(nameServer, op.code, op.request.encode(request) as never, {
          timeoutMs: GRPC_ROUTE_LOOKUP_TIMEOUT_MS,
        });
        return op.response.decode(payload as never);
      } catch (error) {
        if (!isRocketError(error) || !error.retriable) throw error;
        last = error;
      }
    }
    throw last;
  }
}
