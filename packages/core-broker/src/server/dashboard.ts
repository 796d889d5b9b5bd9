import type { Broker } from '../broker/broker';
import { RocketError } from '../common/errors';
import { SystemProperty } from '../message/system-properties';
import { DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX } from '../message/validation';
import { ADMIN_HANDLERS } from './admin-operations';
import type { BrokerServer } from './broker-server';
import { DASHBOARD_PAGE } from './dashboard-page';
import { type HttpReply, type HttpRequestContext, type HttpRoute, json } from './http-server';

/** How often the lag of every group and the offsets of every topic are sampled for the charts. */
export const DASHBOARD_SAMPLE_INTERVAL_MS = 10_000;
/** Samples kept: one hour at {@link DASHBOARD_SAMPLE_INTERVAL_MS}. The ring never grows past it. */
export const DASHBOARD_SAMPLES = 360;
/** Groups (and topics) one sample keeps; the rest are left out of the charts (the tables show all). */
export const DASHBOARD_MAX_SERIES = 200;
/** Most dead letters one page of the browser shows. */
export const DASHBOARD_DLQ_PAGE = 50;

/** One point of the charts: when, each group's total lag, each topic's total stored messages. */
export interface DashboardSample {
  t: number;
  lag: Record<string, number>;
  stored: Record<string, number>;
}

/** The live figures of the dashboard's overview, read from the broker when asked. */
interface Target {
  broker: Broker;
  server: BrokerServer;
}

/**
 * The dashboard's data: an overview read from the broker on each request (topics with queues and
 * offsets, groups with members and lag, the broker and its name servers), a bounded ring of
 * samples for the charts of the last hour, message lookup, and the dead-letter browser with
 * resend (through the admin handlers, as the admin tool does). The page itself is
 * `dashboard-page.ts`: one HTML file, inline SVG charts, no build.
 */
export class Dashboard {
  private readonly ring: DashboardSample[] = [];
  private target: Target | undefined;

  attach(target: Target): void {
    this.target = target;
    this.sample(Date.now());
  }

  /** Takes one sample into the ring (called every {@link DASHBOARD_SAMPLE_INTERVAL_MS}). */
  sample(now: number): void {
    const t = this.target;
    if (!t) return;
    const s: DashboardSample = { t: now, lag: {}, stored: {} };
    for (const row of t.broker.allConsumeStats()) {
      if (row.group in s.lag || Object.keys(s.lag).length < DASHBOARD_MAX_SERIES)
        s.lag[row.group] = (s.lag[row.group] ?? 0) + row.lag;
    }
    for (const topic of t.broker.listTopics().slice(0, DASHBOARD_MAX_SERIES)) {
      let stored = 0;
      for (let q = 0; q < topic.readQueueCount; q++) stored += t.broker.store.maxOffset(topic.topic, q);
      s.stored[topic.topic] = stored;
    }
    this.ring.push(s);
    if (this.ring.length > DASHBOARD_SAMPLES) this.ring.shift();
  }

  routes(): HttpRoute[] {
    const page: HttpReply = {
      status: 200,
      contentType: 'text/html; charset=utf-8',
      body: DASHBOARD_PAGE,
      headers: {
        'content-security-policy':
          "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
      },
    };
    return [
      { method: 'GET', path: '/dashboard', access: 'account', handle: () => page },
      {
        method: 'GET',
        path: '/dashboard/api/overview',
        access: 'account',
        handle: () => json(200, this.overview()),
      },
      { method: 'GET', path: '/dashboard/api/message', access: 'admin', handle: (r) => this.lookup(r) },
      { method: 'GET', path: '/dashboard/api/dlq', access: 'admin', handle: (r) => this.deadLetters(r) },
      { method: 'POST', path: '/dashboard/api/dlq/resend', access: 'admin', handle: (r) => this.resend(r) },
    ];
  }

  private broker(): Broker {
    if (!this.target)
      throw new RocketError('BROKER_UNAVAILABLE', 'the broker is starting; try again shortly');
    return this.target.broker;
  }

  private overview(): unknown {
    const t = this.target;
    if (!t) return { starting: true };
    const { broker, server } = t;
    const now = Date.now();
    // throughput: stored messages per second over the last sample interval or so
    const previous = this.ring.length > 0 ? this.ring[this.ring.length - 1]! : undefined;
    const topics = broker.listTopics().map((config) => {
      const queues = [];
      let stored = 0;
      for (let q = 0; q < config.readQueueCount; q++) {
        const maxOffset = broker.store.maxOffset(config.topic, q);
        stored += maxOffset;
        queues.push({ queueId: q, minOffset: broker.store.minOffset(config.topic, q), maxOffset });
      }
      const before = previous?.stored[config.topic];
      const seconds = previous ? (now - previous.t) / 1000 : 0;
      return {
        topic: config.topic,
        fifo: config.fifo,
        readQueueCount: config.readQueueCount,
        writeQueueCount: config.writeQueueCount,
        permission: config.permission,
        system: config.topic.startsWith(RETRY_TOPIC_PREFIX) || config.topic.startsWith(DLQ_TOPIC_PREFIX),
        stored,
        perSecond: before !== undefined && seconds >= 1 ? Math.max(0, stored - before) / seconds : null,
        queues,
      };
    });
    const groups = new Map<string, { group: string; lag: number; members: string[]; queues: unknown[] }>();
    for (const row of broker.allConsumeStats()) {
      let g = groups.get(row.group);
      if (!g) {
        g = { group: row.group, lag: 0, members: broker.consumerIds({ group: row.group }), queues: [] };
        groups.set(row.group, g);
      }
      g.lag += row.lag;
      g.queues.push({
        topic: row.topic,
        queueId: row.queueId,
        brokerOffset: row.brokerOffset,
        consumerOffset: row.consumerOffset,
        lag: row.lag,
      });
    }
    const current: DashboardSample = { t: now, lag: {}, stored: {} };
    for (const g of groups.values()) current.lag[g.group] = g.lag;
    const stats = broker.store.stats?.();
    const range = broker.store.commitLogRange();
    const listening = server.address();
    return {
      broker: {
        brokerName: broker.brokerName,
        address: `${listening.host}:${listening.port}`,
        nameServers: server.registeredNow ?? null,
        commitLogBytes: range.maxOffset - range.minOffset,
        diskUsedRatio: stats?.diskUsedRatio ?? null,
        diskFull: stats?.diskFull ?? false,
        ...broker.pendingWork(),
      },
      topics,
      groups: [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : 1)),
      deadLetterGroups: topics
        .filter((x) => x.topic.startsWith(DLQ_TOPIC_PREFIX))
        .map((x) => ({ group: x.topic.slice(DLQ_TOPIC_PREFIX.length), stored: x.stored })),
      // the ring plus the present, so the chart's last point is never older than this answer
      history: [...this.ring, current].map((s) => ({ t: s.t, lag: s.lag })),
      sampleIntervalMs: DASHBOARD_SAMPLE_INTERVAL_MS,
    };
  }

  private lookup({ url }: HttpRequestContext): HttpReply {
    const broker = this.broker();
    const id = url.searchParams.get('id');
    if (id) {
      const found = ADMIN_HANDLERS.viewMessage(broker, { msgId: id });
      return found
        ? json(200, [found])
        : json(404, { code: 'MESSAGE_NOT_FOUND', message: `no message ${id}` });
    }
    const topic = url.searchParams.get('topic');
    const key = url.searchParams.get('key');
    if (!topic || !key)
      throw new RocketError('INVALID_ARGUMENT', 'give id=<msgId>, or topic=<topic>&key=<key>');
    return json(200, ADMIN_HANDLERS.queryMessageByKey(broker, { topic, key }));
  }

  private deadLetters({ url }: HttpRequestContext): HttpReply {
    const broker = this.broker();
    const group = url.searchParams.get('group');
    if (!group) throw new RocketError('INVALID_ARGUMENT', 'give group=<consumer group>');
    const topic = `${DLQ_TOPIC_PREFIX}${group}`;
    const config = broker.getTopic(topic);
    const out = [];
    for (let q = 0; config && q < config.readQueueCount && out.length < DASHBOARD_DLQ_PAGE; q++) {
      const got = broker.store.getMessages(topic, q, broker.store.minOffset(topic, q), {
        maxCount: DASHBOARD_DLQ_PAGE - out.length,
      });
      for (const m of got.messages) {
        out.push({
          msgId: m.msgId,
          originTopic: m.properties[SystemProperty.ORIGIN_TOPIC] ?? null,
          tag: m.tag ?? null,
          keys: [...m.keys],
          reconsumeTimes: m.reconsumeTimes,
          storeTimestampMs: m.storeTimestampMs,
          bodyPreview: m.body.subarray(0, 256).toString('utf8'),
          properties: { ...m.properties },
        });
      }
    }
    return json(200, out);
  }

  private async resend({ body }: HttpRequestContext): Promise<HttpReply> {
    return json(200, await ADMIN_HANDLERS.resendDeadLetter(this.broker(), body));
  }
}
