import { TcpTransport, type TcpTransportOptions } from '../../src/client/tcp-transport';
import { BrokerServer, type BrokerServerOptions } from '../../src/server/broker-server';
import { type Cluster, startCluster } from '../support/client-harness';
import type { TopicInput } from '../../src/broker/topic-registry';

/** Brokers on memory stores (manual clock), each served on 127.0.0.1, one TcpTransport over them. */
export interface TcpCluster {
  cluster: Cluster;
  servers: Map<string, BrokerServer>;
  transport: TcpTransport;
  address(name: string): string;
  /** Closes a broker's server (the broker stays up). */
  stopServer(name: string): Promise<void>;
  /** Serves the broker again on the same port. */
  restartServer(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpCluster(
  options: {
    brokerNames?: string[];
    topics?: TopicInput[];
    server?: Partial<BrokerServerOptions>;
    transport?: Partial<TcpTransportOptions>;
  } = {},
): Promise<TcpCluster> {
  const cluster = await startCluster({ brokerNames: options.brokerNames, topics: options.topics });
  const servers = new Map<string, BrokerServer>();
  const addresses: Record<string, string> = {};
  for (const broker of cluster.brokers) {
    const server = await BrokerServer.start({ ...options.server, broker, host: '127.0.0.1', port: 0 });
    servers.set(broker.brokerName, server);
    addresses[broker.brokerName] = `127.0.0.1:${server.address().port}`;
  }
  const transport = new TcpTransport({ reconnectBackoffMinMs: 0, ...options.transport, brokers: addresses });
  return {
    cluster,
    servers,
    transport,
    address: (name) => addresses[name]!,
    stopServer: async (name) => servers.get(name)!.close(),
    restartServer: async (name) => {
      const port = Number(addresses[name]!.split(':')[1]);
      servers.set(
        name,
        await BrokerServer.start({
          ...options.server,
          broker: cluster.broker(name),
          host: '127.0.0.1',
          port,
        }),
      );
    },
    close: async () => {
      await transport.close();
      for (const s of servers.values()) await s.close();
      await cluster.close();
    },
  };
}
