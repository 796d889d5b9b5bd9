// Issue 15 #1, as processes: an orderly consumer group keeps FIFO exclusivity and order across a
// member's kill -9 and restart, and across a kill -9 and restart of the broker.
//
// A `rocketnest broker` process serves a FIFO topic; two members of an orderly push consumer group
// run as child processes (orderly-member-child.ts) and report every listener start and end with a
// CLOCK_MONOTONIC timestamp; this process sends rounds of messages in 8 message groups over TCP.
//
// What is asserted, per message group (all of a group's messages are in one queue, in send order):
//
// - **No overlap**: no two members are inside a listener with a message of the group at the same
//   moment. A killed member's listener counts as open until its process has exited.
// - **No order regression**, except an allowed redelivery. Ordered by start time, each start must
//   take a message at a higher queue offset than every message of the group started before, or be
//   a redelivery that RocketMQ's at-least-once delivery allows:
//     1. it follows a fault (the kill of a member or of the broker) that happened after the group's
//        previous start, or continues such a redelivered run in order (the next offset of the group
//        after the previous start) — or it follows a kill of the broker at any earlier time: the
//        restarted broker has only the offsets its dead predecessor had persisted, and a member
//        reads a queue's offset from the broker whenever it (re)takes the queue (reconnect,
//        re-lock, rebalance), which may come a few messages after its first start since the
//        restart (RocketMQ's RemoteBrokerOffsetStore does the same); and
//     2. the message was not acknowledged at that fault: its queue offset is at or past the group's
//        committed offset for the queue as the broker knew it then (after a member's kill: the
//        broker's committed offset read over admin once the process is gone; after the broker's
//        kill: its consumerOffset.json as the dead broker left it on disk).
//   So a redelivered tail (messages consumed but not yet committed when the fault hit) is allowed;
//   a message older than one already acknowledged, consumed after it, is not — and neither is any
//   redelivery without a fault (a clean rebalance hands a queue over at its committed offset).
// - **Nothing lost**: every message whose send was acknowledged is consumed to its end.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { CliProcess } from '../cluster/process-harness';
import { tempDir } from '../support/temp-dir';

jest.setTimeout(420_000);

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const CHILD = path.join(__dirname, 'orderly-member-child.ts');
const TOPIC = 'Fifo';
const GROUP = 'FifoG';
const GROUPS = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7'];
/** Upper bound on rounds one sender sends (8 messages each). */
const MAX_ROUNDS = 400;

const now = (): bigint => process.hrtime.bigint();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `condition` on real time, failing after `timeoutMs` with `what` and `detail()`. */
async function until(
  condition: () => boolean,
  what: string,
  timeoutMs: number,
  detail = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what} ${detail()}`);
    await sleep(20);
  }
}

interface Event {
  kind: 'S' | 'E';
  member: string;
  group: string;
  seq: number;
  queueId: number;
  queueOffset: number;
  t: bigint;
}

interface Fault {
  what: string;
  t: bigint;
  /** The group's committed offset per queue id when the fault hit. */
  committed: Map<number, number>;
  /** The broker died: offsets committed after its last persist are gone (see rule 1 above). */
  offsetsLost?: boolean;
}

/** A member process; its events go to the shared log as its lines arrive. */
class Member {
  readonly events: Event[] = [];
  ready = false;
  /** When its process was seen to have exited (its open listener ends there at the latest). */
  exitedAt: bigint | undefined;
  readonly exited: Promise<void>;
  stderr = '';
  /** How its process ended, once it has. */
  exit: string | undefined;
  /** Its last reported consumer events. */
  reports: string[] = [];
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    brokerAddress: string,
    log: Event[],
  ) {
    this.child = spawn(process.execPath, ['-r', REGISTER, CHILD, brokerAddress, name, TOPIC, GROUP], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const [kind, member, group, seq, queueId, queueOffset, t] = line.split(' ');
        if (kind === 'READY') this.ready = true;
        if (kind === 'EV') this.reports = [...this.reports.slice(-9), line];
        if (kind !== 'S' && kind !== 'E') continue;
        const event: Event = {
          kind,
          member: member!,
          group: group!,
          seq: Number(seq),
          queueId: Number(queueId),
          queueOffset: Number(queueOffset),
          t: BigInt(t!),
        };
        this.events.push(event);
        log.push(event);
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exitedAt = now();
        this.exit = signal ?? `exit code ${code}`;
        resolve();
      }),
    );
  }

  /** Messages it finished. */
  get finished(): number {
    return this.events.filter((e) => e.kind === 'E').length;
  }

  /** True while its latest event is a start: it is inside its listener. */
  get inside(): boolean {
    return this.events.at(-1)?.kind === 'S';
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

const senders = new Set<Sender>();

/** Sends rounds (one message per group, in order) until stopped; a failed send is retried, in order. */
class Sender {
  /** Acknowledged sends, as `group#seq`. */
  readonly acknowledged = new Set<string>();
  paceMs = 0;
  failures = 0;
  private stopped = false;
  private running: Promise<void> | undefined;
  private round = 0;

  constructor(private readonly producer: Producer) {}

  start(): void {
    this.stopped = false;
    this.running = this.loop();
    senders.add(this);
  }

  /** Stops after the send in progress; resolves when it has ended (rejects if the loop failed). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped && this.round < MAX_ROUNDS) {
      for (const group of GROUPS) {
        const seq = this.round;
        for (let attempt = 0; ; attempt++) {
          try {
            await this.producer.send({
              topic: TOPIC,
              messageGroup: group,
              properties: { fifoGroup: group, seq: String(seq) },
              body: `${group}#${seq}`,
            });
            break;
          } catch (error) {
            this.failures++;
            if (this.stopped || attempt >= 100) throw error;
            await sleep(200);
          }
        }
        this.acknowledged.add(`${group}#${seq}`);
      }
      this.round++;
      await sleep(this.paceMs);
    }
  }
}

/** Overlaps and order regressions in `log`, by the rules at the top of this file. */
function check(
  log: readonly Event[],
  members: readonly Member[],
  faults: readonly Fault[],
): { overlaps: string[]; regressions: string[]; redelivered: number } {
  const overlaps: string[] = [];
  const regressions: string[] = [];
  let redelivered = 0;
  const exitOf = new Map(members.map((m) => [m.name, m.exitedAt]));
  for (const group of GROUPS) {
    const events = log.filter((e) => e.group === group).sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    // listener intervals: a start, to the same member's end of the same message (or its exit)
    const intervals: Array<{ member: string; from: bigint; to: bigint; label: string }> = [];
    for (const [i, e] of events.entries()) {
      if (e.kind !== 'S') continue;
      const end = events
        .slice(i + 1)
        .find((x) => x.kind === 'E' && x.member === e.member && x.queueOffset === e.queueOffset);
      const to = end?.t ?? exitOf.get(e.member) ?? BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000n;
      intervals.push({ member: e.member, from: e.t, to, label: `${group}#${e.seq}@${e.queueOffset}` });
    }
    for (const [i, a] of intervals.entries())
      for (const b of intervals.slice(i + 1))
        if (b.from < a.to && a.member !== b.member)
          overlaps.push(`${b.label} started in ${b.member} while ${a.label} was in ${a.member}`);

    // order: offsets increase, but for an allowed redelivery (see the top of this file)
    let highest = -1;
    let previous: Event | undefined;
    let replaying = false;
    for (const e of events) {
      if (e.kind !== 'S') continue;
      if (e.queueOffset > highest) {
        highest = e.queueOffset;
        replaying = false;
      } else {
        const fault = faults
          .filter((f) => f.t <= e.t && (f.offsetsLost || (previous !== undefined && f.t > previous.t)))
          .at(-1);
        const continuing =
          replaying &&
          previous !== undefined &&
          e.queueOffset > previous.queueOffset &&
          !events.some(
            (x) => x.kind === 'S' && x.queueOffset > previous!.queueOffset && x.queueOffset < e.queueOffset,
          );
        const committed = fault?.committed.get(e.queueId) ?? 0;
        if (fault && e.queueOffset >= committed) {
          replaying = true;
          redelivered++;
        } else if (continuing) {
          redelivered++;
        } else {
          regressions.push(
            `${e.member} started ${group}#${e.seq}@${e.queueOffset} after ${previous?.member} started #${previous?.seq}@${previous?.queueOffset} (highest @${highest}` +
              (fault ? `; ${fault.what}, committed @${committed})` : '; no fault since)'),
          );
          replaying = false;
        }
      }
      previous = e;
    }
  }
  return { overlaps, regressions, redelivered };
}

/** The messages acknowledged to the producer that no member finished. */
function unfinished(sender: Sender, log: readonly Event[]): string[] {
  const done = new Set(log.filter((e) => e.kind === 'E').map((e) => `${e.group}#${e.seq}`));
  return [...sender.acknowledged].filter((key) => !done.has(key));
}

/** The group's committed offsets in `consumerOffset.json` under `dir` (as a dead broker left it). */
function committedOnDisk(dir: string): Map<number, number> {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name === 'consumerOffset.json') files.push(p);
    }
  };
  walk(dir);
  // none yet when the broker died before its first persist (every 5 s): it restarts knowing no offsets
  expect(files.length).toBeLessThanOrEqual(1);
  if (files.length === 0) return new Map();
  const table = JSON.parse(readFileSync(files[0]!, 'utf8')) as Record<string, Record<string, number>>;
  return new Map(Object.entries(table[`${TOPIC}@${GROUP}`] ?? {}).map(([q, o]) => [Number(q), o]));
}

describe('the checks of this file', () => {
  const event = (kind: 'S' | 'E', member: string, seq: number, t: number): Event => ({
    kind,
    member,
    group: 'g0',
    seq,
    queueId: 0,
    queueOffset: seq,
    t: BigInt(t),
  });
  const fault = (t: number, committed: number): Fault => ({
    what: 'a kill',
    t: BigInt(t),
    committed: new Map([[0, committed]]),
  });
  const member = (name: string, exitedAt?: number): Member =>
    ({ name, exitedAt: exitedAt === undefined ? undefined : BigInt(exitedAt) }) as Member;

  test('a group in two listeners at once is an overlap; a killed member’s listener is open until its exit', () => {
    const log = [
      event('S', 'A', 0, 10),
      event('S', 'B', 1, 15),
      event('E', 'A', 0, 20),
      event('E', 'B', 1, 30),
    ];
    expect(check(log, [member('A'), member('B')], []).overlaps).toHaveLength(1);
    const killed = [event('S', 'A', 0, 10), event('S', 'B', 0, 40), event('E', 'B', 0, 50)];
    expect(check(killed, [member('A', 50), member('B')], [fault(20, 0)]).overlaps).toHaveLength(1);
    expect(check(killed, [member('A', 30), member('B')], [fault(20, 0)]).overlaps).toEqual([]);
  });

  test('a redelivered unacknowledged tail after a fault is allowed; an acknowledged message, or no fault, is a regression', () => {
    // A consumed 0..3, 0 and 1 were committed (offset 2) when it was killed; B redelivers 2, 3, then 4
    const log = [0, 1, 2, 3].flatMap((seq) => [
      event('S', 'A', seq, seq * 10),
      event('E', 'A', seq, seq * 10 + 5),
    ]);
    const after = [2, 3, 4].flatMap((seq) => [
      event('S', 'B', seq, 100 + seq * 10),
      event('E', 'B', seq, 105 + seq * 10),
    ]);
    const members = [member('A', 50), member('B')];
    expect(check([...log, ...after], members, [fault(40, 2)])).toMatchObject({
      regressions: [],
      redelivered: 2,
    });
    // committed 3 at the kill: redelivering 2 is taking back an acknowledged message
    expect(check([...log, ...after], members, [fault(40, 3)]).regressions[0]).toMatch(
      /B started g0#2@2 after A started #3@3 .*committed @3/,
    );
    // no fault: any step back is a regression
    expect(check([...log, ...after], members, []).regressions[0]).toMatch(/g0#2@2 .*no fault since/);
    // a member kill before A's last start does not excuse a later step back; a broker kill does,
    // down to the offset the dead broker had persisted, and no further
    const late = [...log, ...after];
    expect(check(late, members, [fault(25, 2)]).regressions[0]).toMatch(/g0#2@2 .*no fault since/);
    expect(check(late, members, [{ ...fault(25, 2), offsetsLost: true }])).toMatchObject({
      regressions: [],
    });
    expect(check(late, members, [{ ...fault(25, 3), offsetsLost: true }]).regressions[0]).toMatch(
      /g0#2@2 .*committed @3/,
    );
    // a redelivered run must go on in order: 2 then 2 again is a regression
    const again = [
      event('S', 'B', 2, 120),
      event('E', 'B', 2, 125),
      event('S', 'B', 2, 130),
      event('E', 'B', 2, 135),
    ];
    expect(check([...log, ...again], members, [fault(40, 2)]).regressions).toEqual([
      expect.stringMatching(/B started g0#2@2 after B started #2@2/),
    ]);
  });
});

describe('orderly consumers as processes: kill -9 and restart', () => {
  const dirs = tempDir('rocketnest-orderly-');
  const brokers: CliProcess[] = [];
  const members: Member[] = [];
  let transport: TcpTransport | undefined;
  let producer: Producer | undefined;

  afterEach(async () => {
    for (const s of senders) await s.stop().catch(() => undefined);
    senders.clear();
    for (const m of members) m.kill('SIGKILL');
    await Promise.all(members.map((m) => m.exited));
    await producer?.shutdown();
    await transport?.close();
    for (const b of brokers) b.kill('SIGKILL');
    await Promise.all(brokers.map((b) => b.exited));
    members.splice(0);
    brokers.splice(0);
  });
  afterAll(() => dirs.cleanup());

  async function startBroker(storeDir: string, port = 0): Promise<{ broker: CliProcess; address: string }> {
    const broker = new CliProcess('broker', [
      'broker',
      '--store-dir',
      storeDir,
      '--port',
      String(port),
      '--topics',
      `${TOPIC}:4:fifo`,
    ]);
    brokers.push(broker);
    return { broker, address: await broker.address() };
  }

  async function startProducer(address: string): Promise<Sender> {
    transport = new TcpTransport({ brokers: { 'broker-a': address }, reconnectBackoffMinMs: 10 });
    producer = new Producer({ group: 'FifoP', transport });
    await producer.start();
    return new Sender(producer);
  }

  function startMember(name: string, address: string, log: Event[]): Member {
    const member = new Member(name, address, log);
    members.push(member);
    return member;
  }

  const describeMembers = (): string =>
    members
      .map(
        (m) =>
          `${m.name}: ${m.finished} finished, ${m.exit ?? 'running'} ${m.stderr}\n  ${m.reports.join('\n  ')}`,
      )
      .join('\n');

  test('a member killed with SIGKILL inside its listener and restarted: no overlap, no regression, nothing lost', async () => {
    const storeDir = path.join(dirs.dir, 'member-kill');
    const { address } = await startBroker(storeDir);
    const log: Event[] = [];
    const faults: Fault[] = [];
    const a = startMember('A', address, log);
    const b = startMember('B', address, log);
    await until(() => a.ready && b.ready, 'both members started', 60_000, describeMembers);
    const sender = await startProducer(address);
    sender.paceMs = 50;
    sender.start();
    // both hold queues once each has consumed some
    await until(
      () => a.finished >= 20 && b.finished >= 20,
      'both members consuming',
      120_000,
      describeMembers,
    );

    // kill A while it is inside its listener
    await until(() => a.inside, 'A inside its listener', 30_000);
    const killedAt = now();
    a.kill('SIGKILL');
    await a.exited;
    // the dead connection's last commits are handled by now; nobody else may commit A's queues
    // while its locks live (60 s), so this is what the broker knew at the kill
    await sleep(1_000);
    const stats = await transport!.admin('broker-a', 'consumeStats', { group: GROUP, topic: TOPIC });
    faults.push({
      what: 'A killed',
      t: killedAt,
      committed: new Map(stats.map((row) => [row.queueId, row.consumerOffset ?? 0])),
    });

    // A comes back as a new process (a new client id, as a restarted RocketMQ client has); its old
    // locks expire after 60 s, then A2 or B takes A's queues and consumes what A left
    sender.paceMs = 500;
    const a2 = startMember('A2', address, log);
    await until(() => a2.ready, 'A2 started', 60_000, describeMembers);
    await until(() => a2.finished >= 20, 'A2 consuming', 180_000, describeMembers);
    await sender.stop();
    await until(
      () => unfinished(sender, log).length === 0,
      'every acknowledged message consumed',
      120_000,
      () =>
        `(${unfinished(sender, log).length} left: ${unfinished(sender, log).slice(0, 10).join(', ')}; ${describeMembers()})`,
    );

    const result = check(log, members, faults);
    console.log(
      `orderly member kill: ${sender.acknowledged.size} sent, ${log.filter((e) => e.kind === 'E').length} consumed ` +
        `(A ${a.finished}, B ${b.finished}, A2 ${a2.finished}), ${result.redelivered} redelivered after the kill`,
    );
    expect(result.overlaps).toEqual([]);
    expect(result.regressions).toEqual([]);
  });

  test('the broker killed with SIGKILL and restarted on its store and port: members reconnect; no overlap, no regression, nothing lost', async () => {
    const storeDir = path.join(dirs.dir, 'broker-kill');
    const first = await startBroker(storeDir);
    const { address } = first;
    const port = Number(address.split(':')[1]);
    const log: Event[] = [];
    const faults: Fault[] = [];
    const a = startMember('A', address, log);
    const b = startMember('B', address, log);
    await until(() => a.ready && b.ready, 'both members started', 60_000, describeMembers);
    const sender = await startProducer(address);
    sender.paceMs = 20;
    sender.start();
    await until(
      () => a.finished >= 20 && b.finished >= 20,
      'both members consuming',
      120_000,
      describeMembers,
    );
    // kill the broker while a member is inside its listener; the sender goes on: its sends fail
    // until the broker is back and are retried in order (a send whose answer the kill cut off may be
    // stored twice: a second copy, at a later offset, is a new message to the consumers)
    await until(() => a.inside || b.inside, 'a member inside its listener', 30_000);
    const killedAt = now();
    first.broker.kill('SIGKILL');
    await first.broker.exited;
    faults.push({
      what: 'broker killed',
      t: killedAt,
      committed: committedOnDisk(storeDir),
      offsetsLost: true,
    });
    const finishedAtKill = a.finished + b.finished;

    const second = await startBroker(storeDir, port);
    expect(second.address).toBe(address);
    await second.broker.waitFor(/recovered/);
    // the members reconnect on their own and go on; more messages arrive after the restart
    sender.paceMs = 50;
    await until(
      () => a.finished + b.finished >= finishedAtKill + 80,
      'members consuming after the restart',
      120_000,
      () =>
        `${describeMembers()}; ${sender.acknowledged.size} sent, ${sender.failures} failed sends; broker:\n${second.broker.output.slice(-3000)}`,
    );
    await sender.stop();
    await until(
      () => unfinished(sender, log).length === 0,
      'every acknowledged message consumed',
      120_000,
      () =>
        `(${unfinished(sender, log).length} left: ${unfinished(sender, log).slice(0, 10).join(', ')}; ${describeMembers()})`,
    );

    const result = check(log, members, faults);
    console.log(
      `orderly broker kill: ${sender.acknowledged.size} sent (${sender.failures} failed sends retried), ` +
        `${log.filter((e) => e.kind === 'E').length} consumed (A ${a.finished}, B ${b.finished}), ` +
        `${finishedAtKill} before the kill, ${result.redelivered} redelivered after it`,
    );
    expect(result.overlaps).toEqual([]);
    expect(result.regressions).toEqual([]);
  });
});
