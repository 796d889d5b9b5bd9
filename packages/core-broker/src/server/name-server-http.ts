import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AccessControl } from '../broker/access-control';
import type { NameServer } from './name-server';
import { type HttpRoute, HttpServer, json, text } from './http-server';

/**
 * The name server's HTTP endpoint (`rocketnest namesrv --http-port`): `/healthz`, `/readyz` (ready
 * once it listens) and `/metrics` (brokers and topics in its route table, connections), read from
 * the name server when scraped.
 */
export async function startNameServerHttp(options: {
  host: string;
  port: number;
  acl?: AccessControl | undefined;
  nameServer: NameServer;
}): Promise<HttpServer> {
  const { nameServer } = options;
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: 'rocketnest_' });
  new Gauge({
    name: 'rocketnest_namesrv_brokers',
    help: 'Brokers registered with this name server',
    registers,
    collect() {
      this.set(nameServer.routes.size);
    },
  });
  new Gauge({
    name: 'rocketnest_namesrv_topics',
    help: 'Topics in the route table of this name server',
    registers,
    collect() {
      this.set(nameServer.routes.topics().length);
    },
  });
  new Gauge({
    name: 'rocketnest_connections',
    help: 'Open connections (brokers and clients)',
    registers,
    collect() {
      this.set(nameServer.remoting.connections.length);
    },
  });
  const routes: HttpRoute[] = [
    { method: 'GET', path: '/healthz', access: 'open', handle: () => text(200, 'ok\n') },
    {
      method: 'GET',
      path: '/readyz',
      access: 'account',
      handle: () => json(200, { status: 'ready', reasons: [] }),
    },
    {
      method: 'GET',
      path: '/metrics',
      access: 'account',
      handle: async () => ({
        status: 200,
        contentType: registry.contentType,
        body: await registry.metrics(),
      }),
    },
  ];
  return HttpServer.start({ host: options.host, port: options.port, acl: options.acl, routes });
}
