'use strict';
// NATS JetStream through nats.js v2: a file-storage stream with one subject, async `js.publish`
// with at most `maxInFlight` PubAcks outstanding, durable pull consumers (`consume()`, explicit
// ack of every message). One uniquely named stream per run, deleted at teardown.

const { connect, AckPolicy, DeliverPolicy, StorageType } = require('nats');
const {
  BODY_BYTES,
  uniqueName,
  meter,
  windowedPublish,
  fixedRateLatency,
  withTimeout,
} = require('../common.js');

const SERVERS = '127.0.0.1:4222';
const PULL_BATCH = 1024;
const MAX_ACK_PENDING = 4096;
const BACKLOG_DEADLINE_MS = 300_000;

const open = () => connect({ servers: SERVERS, timeout: 5000, reconnect: false });

/** Feeds every message of `consumer` to `onMessage` until `stop()` or until onMessage returns true. */
async function pump(consumer, maxMessages, onMessage) {
  const messages = await consumer.consume({ max_messages: maxMessages });
  const done = (async () => {
    for await (const m of messages) {
      if (onMessage(m)) break;
    }
  })();
  return {
    done,
    async stop() {
      messages.stop();
      await withTimeout(done, 5000, 'nats consumer loop').catch(() => {});
    },
  };
}

function create({ serverPid }) {
  const stream = uniqueName('nats');
  const subject = stream; // one token, no wildcard
  let nc;
  let js;
  let jsm;
  return {
    name: 'nats',
    label: 'NATS JetStream',
    describe: `nats.js, file-storage stream \`${stream}\`, js.publish + PubAck, pull consumer (batch ${PULL_BATCH}, max_ack_pending ${MAX_ACK_PENDING}, explicit ack per message)`,
    async setup() {
      nc = await open();
      jsm = await nc.jetstreamManager();
      js = nc.jetstream();
      await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File });
    },
    async publish(count, maxInFlight) {
      const body = Buffer.alloc(BODY_BYTES, 0x61);
      const m = meter(serverPid);
      const messages = await windowedPublish(count, maxInFlight, () => js.publish(subject, body));
      return { messages, ...m.stop() };
    },
    async consumeBacklog(count) {
      await jsm.consumers.add(stream, {
        durable_name: 'backlog',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: MAX_ACK_PENDING,
      });
      const consumer = await js.consumers.get(stream, 'backlog');
      const m = meter(serverPid);
      let messages = 0;
      let bytes = 0;
      const p = await pump(consumer, PULL_BATCH, (msg) => {
        bytes += msg.data.length;
        msg.ack();
        return ++messages >= count;
      });
      const guard = setTimeout(() => void p.stop(), BACKLOG_DEADLINE_MS);
      await p.done;
      clearTimeout(guard);
      await nc.flush(); // the acks have left and the server has answered a PING after them
      const stats = { messages, bytes, ...m.stop() };
      await p.stop();
      return stats;
    },
    async latency(ratePerS, seconds) {
      await jsm.consumers.add(stream, {
        durable_name: 'latency',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        max_ack_pending: MAX_ACK_PENDING,
      });
      return fixedRateLatency({
        system: 'nats',
        spec: { stream, durable: 'latency' },
        ratePerS,
        seconds,
        serverPid,
        send: (body) => js.publish(subject, body),
      });
    },
    async teardown() {
      if (!nc) return;
      try {
        if (jsm) await withTimeout(jsm.streams.delete(stream), 30_000, 'nats stream delete');
      } finally {
        await nc.close();
      }
    },
  };
}

async function openConsumer({ stream, durable }, onBody) {
  const nc = await open();
  const consumer = await nc.jetstream().consumers.get(stream, durable);
  const p = await pump(consumer, 256, (msg) => {
    onBody(msg.data);
    msg.ack();
    return false;
  });
  return {
    async close() {
      await p.stop();
      await nc.close();
    },
  };
}

module.exports = { name: 'nats', serverProcess: 'nats-server', create, openConsumer };
