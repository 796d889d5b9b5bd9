'use strict';
// Consumer side of the latency run, in its own process:
//   node bench/network/consumer-child.js <system> '<spec as JSON>'   (forked with an IPC channel)
// Opens the system's consumer on the resource named in the spec, says {type:'ready'}, records the
// latency of each message (send time is in its body, process.hrtime: one clock for all processes),
// and after the parent's {type:'expect', total} answers {type:'result', latenciesUs, received, cpuS}
// once `total` messages arrived or 30 s passed, then exits.

const { latencyMicros } = require('./common.js');
const { systems } = require('./systems/index.js');

const [name, specJson] = process.argv.slice(2);
const system = systems[name];
if (!system || !specJson || !process.send) {
  console.error(
    'usage: forked as consumer-child.js <system> <spec JSON>, system one of',
    Object.keys(systems),
  );
  process.exit(2);
}

const latencies = [];
let expected = Infinity;
let consumer;
let finishing = false;
const cpuStart = process.cpuUsage();

async function finish() {
  if (finishing) return;
  finishing = true;
  clearTimeout(deadline);
  const used = process.cpuUsage(cpuStart);
  // Wait until the (large) result has been written to the channel before disconnecting it.
  await new Promise((resolve) =>
    process.send(
      {
        type: 'result',
        latenciesUs: latencies,
        received: latencies.length,
        cpuS: (used.user + used.system) / 1e6,
      },
      resolve,
    ),
  );
  try {
    await consumer?.close();
  } finally {
    process.disconnect();
    setTimeout(() => process.exit(0), 2000).unref();
  }
}

let deadline;
process.on('message', (message) => {
  if (message?.type !== 'expect') return;
  expected = message.total;
  if (latencies.length >= expected) void finish();
  else deadline = setTimeout(() => void finish(), 30_000);
});
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => setTimeout(() => process.exit(0), 2000).unref());

system
  .openConsumer(JSON.parse(specJson), (body) => {
    latencies.push(latencyMicros(body));
    if (latencies.length >= expected) void finish();
  })
  .then((c) => {
    consumer = c;
    process.send({ type: 'ready' });
  })
  .catch((error) => {
    process.send({ type: 'error', error: String(error?.stack ?? error) });
    process.exitCode = 1;
    process.disconnect();
  });
