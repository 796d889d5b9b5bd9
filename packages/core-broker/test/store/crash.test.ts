/**
 * kill -9 durability: a child process appends under sync flush and prints every acknowledged
 * append; the parent SIGKILLs it at a random moment, reopens the same directory and checks that
 * every acknowledged record survived intact, that queue offsets are dense and that the store takes
 * appends again. The directory is reused for every round, so recovery runs over a growing store
 * with many segments, a checkpoint from the previous round (or from the child's derived flush) and
 * whatever the kill left half done.
 *
 * ROCKETNEST_CRASH_SEED=<n> replays a schedule of kill delays (timing still varies);
 * ROCKETNEST_CRASH_VERBOSE=1 prints one line per round (acks, records, recovery report, time).
 * SIGKILL leaves the page cache intact, so this test finds lost acknowledgements and recovery or
 * dispatch bugs, not torn sectors: those are corruption.test.ts's and fault.test.ts's business.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { FileStore } from '../../src/store/file-store';
import { tempDir } from '../support/temp-dir';
import type { StoreEvent } from '../../src/store/store-events';
import {
  CRASH_INDEX_ENTRIES_PER_FILE,
  CRASH_INDEX_SLOTS_PER_FILE,
  CRASH_QUEUES,
  CRASH_SEGMENT_SIZE_BYTES,
  CRASH_TOPIC,
  crashBody,
  parseCrashBody,
} from './crash-child';

const ROUNDS = 20;
const CHILD = path.join(__dirname, 'crash-child.ts');
const REGISTER = path.join(__dirname, '..', 'support', 'swc-register.js');
/** Seed of the kill delays; set ROCKETNEST_CRASH_SEED to replay a failing run. */
const SEED = Number(process.env.ROCKETNEST_CRASH_SEED ?? Date.now() % 1_000_000);

interface Ack {
  id: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
}

/** mulberry32: a small seeded PRNG, so a failing schedule of kills can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const live = new Set<ChildProcess>();

/**
 * Runs the child until `killDelayMs` after its first acknowledgement, then SIGKILLs it. Only
 * newline-terminated lines count: a line cut by the kill was never fully acknowledged to us.
 */
function runAndKill(
  dir: string,
  firstSeq: number,
  concurrency: number,
  derivedFlushMs: number,
  killDelayMs: number,
): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['-r', REGISTER, CHILD, dir, String(firstSeq), String(concurrency), String(derivedFlushMs)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    live.add(child);
    let stdout = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    let killed = false;
    const kill = (): void => {
      killed = true;
      child.kill('SIGKILL');
    };
    const noAckTimer = setTimeout(kill, 20_000);
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      stdout += chunk;
      if (killTimer === undefined && stdout.includes('\n')) {
        clearTimeout(noAckTimer);
        killTimer = setTimeout(kill, killDelayMs);
      }
    });
    child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      live.delete(child);
      clearTimeout(noAckTimer);
      if (killTimer) clearTimeout(killTimer);
      if (!killed || signal !== 'SIGKILL' || killTimer === undefined) {
        reject(
          new Error(
            `crash child ended on its own (code ${code}, signal ${signal}, killed ${killed}): ${stderr}`,
          ),
        );
        return;
      }
      const complete = stdout.slice(0, stdout.lastIndexOf('\n') + 1);
      const acks = complete
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => {
          const [id, queueId, queueOffset, commitLogOffset] = line.split(' ');
          return {
            id: id!,
            queueId: Number(queueId),
            queueOffset: Number(queueOffset),
            commitLogOffset: Number(commitLogOffset),
          };
        });
      resolve(acks);
    });
  });
}

/** Everything wrong with the reopened store, as readable strings (at most `limit`). */
function problems(
  store: FileStore,
  acked: ReadonlyMap<string, Ack>,
  fresh: ReadonlySet<string>,
  round: number,
  limit = 20,
): string[] {
  const out: string[] = [];
  const report = (what: string): void => void (out.length < limit && out.push(what));

  // 1. Every queue is dense from 0, every record intact, every id stored once.
  const byQueue: Array<Map<number, string>> = [];
  const seen = new Set<string>();
  for (let queueId = 0; queueId < CRASH_QUEUES; queueId++) {
    const positions = new Map<number, string>();
    byQueue.push(positions);
    const max = store.maxOffset(CRASH_TOPIC, queueId);
    if (store.minOffset(CRASH_TOPIC, queueId) !== 0)
      report(`queue ${queueId}: min offset ${store.minOffset(CRASH_TOPIC, queueId)}`);
    let next = 0;
    while (next < max) {
      const got = store.getMessages(CRASH_TOPIC, queueId, next, { maxCount: 1024 });
      if (got.status !== 'FOUND' || got.messages.length === 0) {
        report(`queue ${queueId}: offset ${next} of ${max} unreadable (${got.status})`);
        break;
      }
      for (const m of got.messages) {
        const parsed = parseCrashBody(m.body);
        if (m.queueOffset !== next)
          report(`queue ${queueId}: expected offset ${next}, read ${m.queueOffset}`);
        if (!parsed || parsed.queueId !== queueId || m.queueId !== queueId)
          report(`queue ${queueId} offset ${m.queueOffset}: damaged body`);
        if (parsed) {
          if (seen.has(parsed.id)) report(`id ${parsed.id} stored twice`);
          seen.add(parsed.id);
          positions.set(m.queueOffset, parsed.id);
        }
        next = m.queueOffset + 1;
      }
      if (got.nextOffset !== next) report(`queue ${queueId}: nextOffset ${got.nextOffset}, expected ${next}`);
    }
  }

  // 2. Every acknowledged append is where its acknowledgement said: by offset, in its queue, by id and key.
  for (const ack of acked.values()) {
    const expected = crashBody(ack.id, ack.queueId);
    const view = store.getByCommitLogOffset(ack.commitLogOffset);
    if (!view) {
      report(`acked ${ack.id} missing at commit-log offset ${ack.commitLogOffset}`);
      continue;
    }
    if (
      !view.body.equals(expected) ||
      view.queueId !== ack.queueId ||
      view.queueOffset !== ack.queueOffset ||
      view.topic !== CRASH_TOPIC
    ) {
      report(`acked ${ack.id} at ${ack.commitLogOffset} read back different`);
    }
    if (byQueue[ack.queueId]!.get(ack.queueOffset) !== ack.id) {
      report(
        `acked ${ack.id}: queue ${ack.queueId} offset ${ack.queueOffset} holds ${byQueue[ack.queueId]!.get(ack.queueOffset)}`,
      );
    }
    // the id and key lookups for this round's acks and a quarter of older ones, to bound the time
    if (!fresh.has(ack.id) && (ack.queueOffset + ack.queueId) % 4 !== round % 4) continue;
    if (store.getById(view.msgId)?.commitLogOffset !== ack.commitLogOffset)
      report(`acked ${ack.id}: getById misses`);
    const byKey = store.queryByKey({ topic: CRASH_TOPIC, key: `k${ack.id}` });
    if (byKey.length !== 1 || !byKey[0]!.body.equals(expected))
      report(`acked ${ack.id}: queryByKey returned ${byKey.length} messages`);
  }
  return out;
}

afterAll(() => {
  for (const child of live) child.kill('SIGKILL');
});

test(`acknowledged sync-flush appends survive kill -9 (${ROUNDS} rounds, seed ${SEED})`, async () => {
  const t = tempDir('rocketnest-crash-');
  const random = prng(SEED);
  const acked = new Map<string, Ack>();
  const log: string[] = [];
  let partialRecoveries = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const concurrency = [8, 20, 32][round % 3]!;
      const derivedFlushMs = round % 2 === 0 ? 10 : 1000; // checkpoints while running, or hardly any
      const killDelayMs = 20 + Math.floor(random() * 381);
      const started = Date.now();
      const acks = await runAndKill(t.dir, round * 1_000_000, concurrency, derivedFlushMs, killDelayMs);
      for (const ack of acks) acked.set(ack.id, ack);

      const events: StoreEvent[] = [];
      const store = await FileStore.open({
        dir: t.dir,
        segmentSizeBytes: CRASH_SEGMENT_SIZE_BYTES,
        flushMode: 'sync',
        retentionIntervalMs: 0,
        indexEntriesPerFile: CRASH_INDEX_ENTRIES_PER_FILE,
        indexSlotsPerFile: CRASH_INDEX_SLOTS_PER_FILE,
        onEvent: (e) => events.push(e),
      });
      try {
        const records = Array.from({ length: CRASH_QUEUES }, (_, q) =>
          store.maxOffset(CRASH_TOPIC, q),
        ).reduce((a, b) => a + b);
        if (store.recovery.verifiedRecords < records) partialRecoveries++;
        const line =
          `round ${round}: killed ${killDelayMs} ms after the first ack, ${acks.length} acks, ${records} records, ` +
          `recovery ${JSON.stringify(store.recovery)}, log end ${store.commitLogRange().maxOffset}`;
        log.push(line);
        expect(acks.length).toBeGreaterThan(0);
        // From round 1 on, the previous round's close left a valid checkpoint (or the child replaced it).
        if (round > 0) expect(store.recovery.fromCheckpoint).toBe(true);
        const fresh = new Set(acks.map((a) => a.id));
        expect({ round, seed: SEED, problems: problems(store, acked, fresh, round) }).toEqual({
          round,
          seed: SEED,
          problems: [],
        });
        log[log.length - 1] = `${line}, round took ${Date.now() - started} ms`;
        // a kill leaves at most unflushed index files without headers, never damaged ones
        expect(events.filter((e) => e.type === 'store.recovery.index-rebuilt')).toEqual([]);

        // The store takes appends again: offsets continue where the queue and the log end.
        const queueId = round % CRASH_QUEUES;
        const id = `p${round}`;
        const queueMax = store.maxOffset(CRASH_TOPIC, queueId);
        const logEnd = store.commitLogRange().maxOffset;
        const result = await store.append({
          topic: CRASH_TOPIC,
          queueId,
          body: crashBody(id, queueId),
          keys: [`k${id}`],
          bornTimestampMs: 1,
        });
        expect(result.queueOffset).toBe(queueMax);
        expect(result.commitLogOffset).toBeGreaterThanOrEqual(logEnd);
        expect(result.commitLogOffset - logEnd).toBeLessThan(result.storeSize); // at most a rolled segment's padding
        expect(store.maxOffset(CRASH_TOPIC, queueId)).toBe(queueMax + 1);
        expect(store.getByCommitLogOffset(result.commitLogOffset)?.body).toEqual(crashBody(id, queueId));
        const readBack = store.getMessages(CRASH_TOPIC, queueId, queueMax, { maxCount: 8 });
        expect(readBack.messages.map((m) => m.body.toString())).toEqual([crashBody(id, queueId).toString()]);
        acked.set(id, {
          id,
          queueId,
          queueOffset: result.queueOffset,
          commitLogOffset: result.commitLogOffset,
        });
      } finally {
        await store.close();
      }
    }
    if (process.env.ROCKETNEST_CRASH_VERBOSE) process.stdout.write(`${log.join('\n')}\n`);
    // The store grew over many segments, and recovery mostly started from a checkpoint in a later
    // segment rather than re-verifying everything.
    expect(segmentCount(t.dir)).toBeGreaterThan(20);
    // and the key index sealed files, whose keys were found by the checks above
    expect(readdirSync(path.join(t.dir, 'index')).length).toBeGreaterThan(1);
    expect(partialRecoveries).toBeGreaterThan(ROUNDS / 2);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- seed ${SEED}, rounds so far ---\n${log.join('\n')}`, {
      cause: error,
    });
  } finally {
    t.cleanup();
  }
}, 90_000);

function segmentCount(dir: string): number {
  return readdirSync(path.join(dir, 'commitlog')).filter((name) => /^\d{20}$/.test(name)).length;
}
