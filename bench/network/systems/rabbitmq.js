'use strict';
// RabbitMQ through amqplib: a durable classic queue, persistent messages published on a
// ConfirmChannel with at most `maxInFlight` unconfirmed, consumed with prefetch and manual acks.
// One uniquely named queue per run, deleted at teardown.

const amqp = require('amqplib');
const {
  BODY_BYTES,
  uniqueName,
  meter,
  windowedPublish,
  fixedRateLatency,
  withTimeout,
} = require('../common.js');

const URL = 'amqp://guest:guest@127.0.0.1:5672';
const PREFETCH = 1024;
/** Backlog consume acks with `multiple: true` every ACK_EVERY deliveries (and at the last one). */
const ACK_EVERY = 64;
const BACKLOG_DEADLINE_MS = 300_000;

async function open() {
  const conn = await amqp.connect(URL, { timeout: 5000 });
  conn.on('error', () => {}); // surfaced by the failing operation instead
  return conn;
}

function confirmedPublish(ch, queue, body) {
  return new Promise((resolve, reject) => {
    ch.publish('', queue, body, { persistent: true }, (err) => (err ? reject(err) : resolve()));
  });
}

function create({ serverPid }) {
  const queue = uniqueName('rabbitmq');
  let conn;
  let ch;
  return {
    name: 'rabbitmq',
    label: 'RabbitMQ',
    describe: `amqplib, durable queue \`${queue}\`, persistent messages, ConfirmChannel; consume prefetch ${PREFETCH}, ack(multiple) every ${ACK_EVERY}`,
    async setup() {
      conn = await open();
      ch = await conn.createConfirmChannel();
      await ch.assertQueue(queue, { durable: true });
    },
    async publish(count, maxInFlight) {
      const body = Buffer.alloc(BODY_BYTES, 0x61);
      const m = meter(serverPid);
      const messages = await windowedPublish(count, maxInFlight, () => confirmedPublish(ch, queue, body));
      return { messages, ...m.stop() };
    },
    async consumeBacklog(count) {
      const cch = await conn.createChannel();
      await cch.prefetch(PREFETCH);
      const m = meter(serverPid);
      let messages = 0;
      let bytes = 0;
      let consumerTag;
      await withTimeout(
        new Promise((resolve, reject) => {
          cch
            .consume(
              queue,
              (msg) => {
                if (msg === null) return reject(new Error('consumer cancelled by the server'));
                bytes += msg.content.length;
                messages++;
                if (messages % ACK_EVERY === 0 || messages >= count) cch.ack(msg, true);
                if (messages >= count) resolve();
              },
              { noAck: false },
            )
            .then((ok) => (consumerTag = ok.consumerTag), reject);
        }),
        BACKLOG_DEADLINE_MS,
        'rabbitmq backlog consume',
      ).catch((error) => {
        if (messages === 0) throw error;
      });
      const stats = { messages, bytes, ...m.stop() };
      if (consumerTag) await cch.cancel(consumerTag);
      await cch.close(); // closes after the acks were written
      return stats;
    },
    async latency(ratePerS, seconds) {
      return fixedRateLatency({
        system: 'rabbitmq',
        spec: { queue },
        ratePerS,
        seconds,
        serverPid,
        send: (body) => confirmedPublish(ch, queue, body),
      });
    },
    async teardown() {
      if (!conn) return;
      try {
        if (ch) await withTimeout(ch.deleteQueue(queue), 30_000, 'rabbitmq queue delete');
      } finally {
        await conn.close().catch(() => {});
      }
    },
  };
}

async function openConsumer({ queue }, onBody) {
  const conn = await open();
  const ch = await conn.createChannel();
  await ch.prefetch(256);
  await ch.consume(
    queue,
    (msg) => {
      if (msg === null) return;
      onBody(msg.content);
      ch.ack(msg);
    },
    { noAck: false },
  );
  return {
    async close() {
      await conn.close().catch(() => {});
    },
  };
}

module.exports = { name: 'rabbitmq', serverProcess: 'beam.smp', create, openConsumer };
