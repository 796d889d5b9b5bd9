import type { AccessControl } from '../broker/access-control';
import type { Broker } from '../broker/broker';
import type { BrokerMetrics } from './broker-metrics';
import type { BrokerServer } from './broker-server';
import { DASHBOARD_SAMPLE_INTERVAL_MS, Dashboard } from './dashboard';
import { type HttpReply, type HttpRoute, HttpServer, json, text } from './http-server';

/** Why a broker is not ready, or nothing when it is. */
export interface Readiness {
  ready: boolean;
  /** One sentence per failed check; empty when ready. */
  reasons: string[];
}

/** What the endpoint serves once the broker is up. */
export interface BrokerHttpTarget {
  broker: Broker;
  server: BrokerServer;
}

/**
 * The broker's HTTP endpoint (`rocketnest broker --http-port`): `/healthz`, `/readyz`, `/metrics`
 * and `/dashboard` (`dashboard.ts`). It starts before the store opens, so a probe sees "alive, not ready" during
 * recovery; {@link attach} hands it the broker once everything is up, and {@link stopping} turns
 * readiness off when shutdown begins. Every answer is read from the broker's own methods and stats.
 */
export class BrokerHttpEndpoint {
  private target: BrokerHttpTarget | undefined;
  private shuttingDown = false;

  private sampler: NodeJS.Timeout | undefined;

  private constructor(
    readonly http: HttpServer,
    private readonly metrics: BrokerMetrics,
    private readonly dashboard: Dashboard,
  ) {}

  static async start(options: {
    host: string;
    port: number;
    acl?: AccessControl | undefined;
    metrics: BrokerMetrics;
  }): Promise<BrokerHttpEndpoint> {
    const ref: { self?: BrokerHttpEndpoint } = {};
    const routes: HttpRoute[] = [
      { method: 'GET', path: '/healthz', access: 'open', handle: () => text(200, 'ok\n') },
      { method: 'GET', path: '/readyz', access: 'account', handle: () => ref.self!.readyz() },
      { method: 'GET', path: '/metrics', access: 'account', handle: () => ref.self!.scrape() },
    ];
    const dashboard = new Dashboard();
    routes.push(...dashboard.routes());
    const http = await HttpServer.start({ host: options.host, port: options.port, acl: options.acl, routes });
    ref.self = new BrokerHttpEndpoint(http, options.metrics, dashboard);
    return ref.self;
  }

  /** The broker is up: serve it (and start its collect-on-scrape gauges). */
  attach(target: BrokerHttpTarget): void {
    this.target = target;
    this.dashboard.attach(target);
    this.sampler = setInterval(() => this.dashboard.sample(Date.now()), DASHBOARD_SAMPLE_INTERVAL_MS);
    this.sampler.unref();
    this.metrics.attach({
      broker: target.broker,
      connections: () => target.server.remoting.connections.length,
      registeredWith: () => target.server.registeredNow,
    });
  }

  /** Shutdown began: report not ready from now on. */
  stopping(): void {
    this.shuttingDown = true;
  }

  /**
   * Ready when the store has recovered and the broker serves, it is registered with at least one of
   * its name servers (when it has any), and its store takes writes (not refusing them on a full disk).
   */
  readiness(): Readiness {
    const reasons: string[] = [];
    const target = this.target;
    if (this.shuttingDown) reasons.push('shutting down');
    if (!target) {
      reasons.push('starting: the store is recovering or the broker is not serving yet');
      return { ready: false, reasons };
    }
    const stats = target.broker.store.stats?.();
    if (stats?.diskFull) {
      reasons.push(
        `refusing writes: the disk holding the store is full (${(stats.diskUsedRatio * 100).toFixed(1)}% used); free space or add disk`,
      );
    }
    const registered = target.server.registeredNow;
    if (registered && registered.registered === 0) {
      reasons.push(`not registered with any of its ${registered.of} name server(s); clients cannot find it`);
    }
    return { ready: reasons.length === 0, reasons };
  }

  private readyz(): HttpReply {
    const r = this.readiness();
    return json(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', reasons: r.reasons });
  }

  private async scrape(): Promise<HttpReply> {
    const { contentType, body } = await this.metrics.scrape();
    return { status: 200, contentType, body };
  }

  address(): { host: string; port: number } {
    return this.http.address();
  }

  close(): Promise<void> {
    clearInterval(this.sampler);
    return this.http.close();
  }
}
