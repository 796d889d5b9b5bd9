'use strict';
// Redis Streams through ioredis: XADD in pipelines of 64 (at most `maxInFlight` replies outstanding),
// XREADGROUP + XACK (one XACK per read batch, pipelined with the next read). One uniquely named
// stream per run, deleted at teardown. Note: durability is whatever the server is configured for
// (on this machine: no AOF, no RDB snapshots, so memory only).

const RedisModule = require('ioredis');
const {
  BODY_BYTES,
  uniqueName,
  meter,
  windowedBatches,
  fixedRateLatency,
  withTimeout,
} = require('../common.js');

const Redis = RedisModule.default ?? RedisModule;
const HOST = '127.0.0.1';
const PORT = 6379;
const READ_COUNT = 1024;
/** XADDs per pipeline; maxInFlight / PIPELINE pipelines are outstanding at a time. */
const PIPELINE = 64;
const BACKLOG_DEADLINE_MS = 300_000;

function client() {
  return new Redis({
    host: HOST,
    port: PORT,
    lazyConnect: true,
    enableAutoPipelining: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null, // fail fast, never loop reconnecting
  });
}

function create({ serverPid }) {
  const key = uniqueName('redis');
  let redis;
  return {
    name: 'redis',
    label: 'Redis Streams',
    describe: `ioredis, XADD in pipelines of ${PIPELINE} / XREADGROUP COUNT ${READ_COUNT} + XACK per batch; stream \`${key}\``,
    async setup() {
      redis = client();
      redis.on('error', () => {}); // surfaced by the failing command instead
      await redis.connect();
      await redis.xgroup('CREATE', key, 'backlog', '0', 'MKSTREAM');
    },
    async publish(count, maxInFlight) {
      const body = Buffer.alloc(BODY_BYTES, 0x61);
      const m = meter(serverPid);
      const messages = await windowedBatches(count, PIPELINE, maxInFlight, async (n) => {
        const pipeline = redis.pipeline();
        for (let i = 0; i < n; i++) pipeline.xadd(key, '*', 'd', body);
        for (const [error] of await pipeline.exec()) if (error) throw error;
      });
      return { messages, ...m.stop() };
    },
    async consumeBacklog(count) {
      const m = meter(serverPid);
      const acks = [];
      let messages = 0;
      let bytes = 0;
      while (messages < count && m.elapsed() < BACKLOG_DEADLINE_MS) {
        const reply = await redis.xreadgroupBuffer(
          'GROUP',
          'backlog',
          'bench',
          'COUNT',
          Math.min(READ_COUNT, count - messages),
          'STREAMS',
          key,
          '>',
        );
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) break; // the backlog is shorter than expected
        for (const [, fields] of entries) bytes += fields[1].length;
        acks.push(redis.xack(key, 'backlog', ...entries.map((e) => e[0])));
        messages += entries.length;
      }
      const acked = (await Promise.all(acks)).reduce((a, b) => a + Number(b), 0);
      return { messages, acked, bytes, ...m.stop() };
    },
    async latency(ratePerS, seconds) {
      await redis.xgroup('CREATE', key, 'latency', '$');
      return fixedRateLatency({
        system: 'redis',
        spec: { key, group: 'latency' },
        ratePerS,
        seconds,
        serverPid,
        send: (body) => redis.xadd(key, '*', 'd', body),
      });
    },
    async teardown() {
      if (!redis) return;
      try {
        if (redis.status === 'ready') await withTimeout(redis.del(key), 30_000, 'redis DEL');
      } finally {
        redis.disconnect();
      }
    },
  };
}

async function openConsumer({ key, group }, onBody) {
  const redis = client();
  redis.on('error', () => {});
  await redis.connect();
  let running = true;
  const loop = (async () => {
    while (running) {
      const reply = await redis.xreadgroupBuffer(
        'GROUP',
        group,
        'child',
        'COUNT',
        256,
        'BLOCK',
        200,
        'STREAMS',
        key,
        '>',
      );
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) continue;
      for (const [, fields] of entries) onBody(fields[1]);
      redis.xack(key, group, ...entries.map((e) => e[0])).catch(() => {});
    }
  })();
  return {
    async close() {
      running = false;
      await withTimeout(loop, 5000, 'redis consumer loop').catch(() => {});
      redis.disconnect();
    },
  };
}

module.exports = { name: 'redis', serverProcess: 'redis-server', create, openConsumer };
