'use strict';
// The systems the network benchmark knows, by name. Each module exports
//   { name, serverProcess, create({ serverPid }) → System, openConsumer(spec, onBody) → { close() } }
// where a System is
//   { name, label, describe, setup(), publish(count, maxInFlight) → stats,
//     consumeBacklog(count) → stats, latency(ratePerS, seconds) → percentiles, teardown() }
// and stats are { messages, ms, clientCpuS, serverCpuS, ... }. `openConsumer` runs in the child
// process of the latency run (consumer-child.js) on the `spec` that `latency` passed to
// fixedRateLatency. A module may instead list `variants` (modules as above, run one after the
// other): RocketNest's TCP broker ('rocketnest') runs an async-flush and a sync-flush broker.

const redis = require('./redis.js');
const nats = require('./nats.js');
const rabbitmq = require('./rabbitmq.js');
const rocketnest = require('./rocketnest.js');

/** RocketNest first, then the peers, in report order. */
const systems = { rocketnest, redis, nats, rabbitmq };

module.exports = { systems };
