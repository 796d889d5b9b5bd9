// Issue 15 #5, as an operator meets it: a `rocketnest broker` process started from the CLI under a
// flood of 10,000 idle connections from one host, then 40 connections that each start a 16 MiB frame
// and stall. The per-address limit refuses the flood's excess, a real client on another address
// still sends and receives during the flood, and the broker's memory comes back once the flood
// closes and stays within the frame budget under the partial frames. No timing assertions: every
// wait is for a condition, with a generous deadline.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { encodeFrame } from '../../src/remoting/frame-codec';
import {
  DEFAULT_MAX_BUFFERED_FRAME_BYTES,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
} from '../../src/remoting/remoting-server';
import { tempDir } from '../support/temp-dir';

jest.setTimeout(300_000);

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');
const MiB = 1024 * 1024;
const TOPIC = 'Flood';
/** The flood comes from another loopback address than the real client (127.0.0.1), like another host. */
const FLOOD_ADDRESS = '127.0.0.2';
const WANTED_FLOOD = 10_000;
/** File descriptors this test process keeps for Jest, the client and the attackers besides the flood. */
const FD_RESERVE = 1_000;
/** Flood sockets opened at once: below the listen backlog (511), so no SYN is dropped and retried. */
const FLOOD_BATCH = 200;
/**
 * How far above its pre-flood RSS the broker may stay once the flood's sockets are closed. The flood
 * holds 1,000 idle connections (the per-address limit) and makes the broker accept and drop 9,000
 * more; what each held connection costs (a socket, its handle, its connection state) must be given
 * back, except what V8 and malloc keep in their free lists (about 30–40 MiB measured). 64 MiB is that slack, not a leak of
 * 1,000 connections' read buffers (the defect kept ~650 MiB).
 */
const RELEASED_SLACK = 64 * MiB;
/** Floods in a row: a leak per flood would add up past {@link REPEAT_SLACK}. */
const FLOOD_ROUNDS = 3;
/**
 * How much more the broker may hold after the last flood closed than after the second (the first
 * grows V8's heap to its working size: 141 → 153 → 159 MiB measured). A leak of what 1,000 held
 * connections use would add this much per flood.
 */
const REPEAT_SLACK = 16 * MiB;
/**
 * The 40 partial 16 MiB frames may grow the broker by at most its frame budget
 * (`maxBufferedFrameBytes`, 64 MiB, docs/broker.md): it reads only the frames the budget reserves,
 * and one socket chunk of each waiting connection.
 */
const PARTIAL_FRAMES_BOUND = DEFAULT_MAX_BUFFERED_FRAME_BYTES;

/** Polls `condition` on real time, failing after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resident memory of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return Number(kb) * 1024;
}

/** This process's soft limit on open files (`ulimit -n`), which a Node process cannot raise itself. */
function ownFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))!;
  return Number(line.split(/\s+/)[3]);
}

/** The fixed part of an unsigned request frame announcing `frameLength` bytes (no body yet). */
function frameStart(frameLength: number): Buffer {
  const fixed = encodeFrame({
    code: 10,
    opaque: 1,
    flags: 0,
    header: Buffer.alloc(0),
    body: Buffer.alloc(0),
  });
  fixed.writeUInt32LE(frameLength, 0);
  return fixed;
}

type Attacker = Socket & { ended: boolean };
const attackers: Attacker[] = [];

/** Opens one socket from `localAddress`; resolves when connected or failed (it may be refused at once). */
function attack(port: number): Promise<Attacker> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: FLOOD_ADDRESS }) as Attacker;
    s.ended = false;
    attackers.push(s);
    s.on('error', () => undefined);
    s.once('close', () => {
      s.ended = true;
      resolve(s);
    });
    s.once('connect', () => resolve(s));
  });
}

function closeAttackers(): void {
  for (const s of attackers.splice(0)) s.destroy();
}

describe('a CLI broker under a flood of idle connections and partial frames', () => {
  const dirs = tempDir('rocketnest-flood-');
  let broker: ChildProcess | undefined;
  let output = '';

  afterAll(async () => {
    closeAttackers();
    if (broker && broker.exitCode === null && broker.signalCode === null) {
      const exited = new Promise((r) => broker!.once('exit', r));
      broker.kill('SIGKILL');
      await exited;
    }
    dirs.cleanup();
  });

  test('the per-address limit refuses the excess, a real client is served, and memory comes back', async () => {
    // the broker gets up to 65,536 descriptors if the hard limit allows (raising it needs root);
    // else it keeps its own soft limit, which must still hold the 1,000 connections it accepts
    const command = [process.execPath, '-r', REGISTER, MAIN, 'broker']
      .concat(['--store-dir', path.join(dirs.dir, 'data'), '--port', '0', '--topics', `${TOPIC}:4`])
      .map((a) => `'${a}'`)
      .join(' ');
    broker = spawn(
      'bash',
      ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ${command}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    broker.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    broker.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    await until(() => /listening on [\d.]+:\d+/.test(output) || broker!.exitCode !== null, 'listening');
    const match = /listening on ([\d.]+):(\d+)/.exec(output);
    if (!match) throw new Error(`the broker did not start:\n${output}`);
    const address = `${match[1]}:${match[2]}`;
    const port = Number(match[2]);
    const pid = broker.pid!;
    const brokerFiles = Number(
      execFileSync('bash', ['-c', `grep 'Max open files' /proc/${pid}/limits | awk '{print $4}'`], {
        encoding: 'utf8',
      }),
    );
    expect(brokerFiles).toBeGreaterThan(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS + 100);
    // this process opens one descriptor per flood socket: as many as its own limit allows, up to 10,000
    const flood = Math.min(WANTED_FLOOD, ownFileLimit() - FD_RESERVE);
    if (flood < WANTED_FLOOD)
      console.warn(
        `ulimit -n of the test process is ${ownFileLimit()}: the flood has ${flood} connections, not 10,000`,
      );
    expect(flood).toBeGreaterThan(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);

    // a real client, on 127.0.0.1: warm up the send and receive paths before the baseline is taken
    const transport = new TcpTransport({ brokers: { 'broker-a': address }, reconnectBackoffMinMs: 10 });
    const producer = new Producer({ group: 'FloodP', transport });
    const received = new Set<string>();
    const consumer = new PushConsumer({ group: 'FloodC', transport, consumeFromWhere: 'FIRST_OFFSET' });
    consumer.subscribe(TOPIC, '*');
    consumer.registerMessageListener((messages) => {
      for (const m of messages) received.add(m.body.toString());
      return ConsumeResult.CONSUME_SUCCESS;
    });
    try {
      await producer.start();
      await consumer.start();
      const roundTrip = async (body: string): Promise<void> => {
        await producer.send({ topic: TOPIC, body });
        await until(() => received.has(body), `"${body}" received`);
      };
      await roundTrip('before the flood');
      const baseline = rssOf(pid);

      const open = (): number => attackers.filter((s) => !s.ended).length;
      const afterRounds: number[] = [];
      let duringFlood = 0;
      for (let round = 1; round <= FLOOD_ROUNDS; round++) {
        // the flood: every socket connects (the kernel accepts it), the broker keeps 1,000 and drops
        // the rest; in rounds 2 and 3 that it keeps 1,000 again shows the closed ones freed their slots
        for (let opened = 0; opened < flood; opened += FLOOD_BATCH) {
          const batch = [];
          for (let i = opened; i < Math.min(flood, opened + FLOOD_BATCH); i++) batch.push(attack(port));
          await Promise.all(batch);
        }
        await until(
          () => open() <= DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
          `round ${round}: the excess refused`,
        );
        // the refused ones are closed by the broker, the kept ones stay open (idle close is 120 s away)
        await new Promise((r) => setTimeout(r, 500));
        expect(open()).toBe(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
        expect(attackers.length - open()).toBe(flood - DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);

        // clients are not locked out: a new connection from 127.0.0.1 sends and receives
        const fresh = new TcpTransport({ brokers: { 'broker-a': address } });
        const freshProducer = new Producer({ group: `FloodP${round}`, transport: fresh });
        try {
          await freshProducer.start();
          await freshProducer.send({ topic: TOPIC, body: `round ${round}: from a new client` });
          await until(
            () => received.has(`round ${round}: from a new client`),
            'the new client’s message received',
          );
        } finally {
          await freshProducer.shutdown();
          await fresh.close();
        }
        await roundTrip(`round ${round}: during the flood`);
        duringFlood = Math.max(duringFlood, rssOf(pid));

        // the flood closes; the broker handles the closes before the round trip that follows them
        closeAttackers();
        await roundTrip(`round ${round}: after the flood`);
        afterRounds.push(rssOf(pid));
      }
      // what the flood held is released: within the slack of V8's and malloc's free lists of the
      // baseline, and the third flood reuses what the second left instead of adding to it
      const afterFlood = afterRounds.at(-1)!;
      expect(afterRounds.filter((rss) => rss > baseline + RELEASED_SLACK)).toEqual([]);
      expect(afterFlood - afterRounds[1]!).toBeLessThan(REPEAT_SLACK);

      // 40 connections each start a 16 MiB frame and send 6 MiB of it, then stall
      const beforeFrames = rssOf(pid);
      const body = Buffer.alloc(6 * MiB, 7);
      const stalled: Attacker[] = [];
      for (let i = 0; i < 40; i++) {
        const s = await attack(port);
        expect(s.ended).toBe(false);
        s.write(frameStart(16 * MiB));
        s.write(body);
        stalled.push(s);
      }
      // let the broker read whatever it will read (a 6 MiB write counts as buffered in the socket
      // until all of it is written, which the paused connections never let happen)
      await new Promise((r) => setTimeout(r, 3_000));
      const underFrames = rssOf(pid);
      await roundTrip('under the partial frames');
      closeAttackers();
      console.log(
        `flood test: ${flood} connections from ${FLOOD_ADDRESS}, ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS} kept; broker RSS ` +
          [baseline, duringFlood, ...afterRounds, beforeFrames, underFrames]
            .map((b) => (b / MiB).toFixed(0))
            .join(' → ') +
          ` MiB (baseline, flood at most, after each of ${FLOOD_ROUNDS} floods closed, before frames, under 40 partial frames)`,
      );
      expect(underFrames - beforeFrames).toBeLessThan(PARTIAL_FRAMES_BOUND);
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
      await transport.close();
    }
  });
});
