'use strict';
// The systems the network benchmark knows, by name. Each module exports
//   { name, serverProcess, create({ serverPid }) → System, openConsumer(spec, onBody) → { close() } }
// where a System is
//   { name, label, describe, setup(), publish(count, maxInFlight) → stats,
//     consumeBacklog(count) → stats, latency(ratePerS, seconds) → percentiles, teardown() }
// and stats are { messages, ms, clientCpuS, serverCpuS, ... }. `openConsumer` runs in the child
// process of the latency run (consumer-child.js) on the `spec` that `latency` passed to
// fixedRateLatency. RocketNest's TCP broker joins as one more module here (name 'rocketnest').

const redis = require('./redis.js');
const nats = require('./nats.js');
const rabbitmq = require('./rabbitmq.js');

/** Peers, in report order. */
const systems = { redis, nats, rabbitmq };

module.exports = { systems };
