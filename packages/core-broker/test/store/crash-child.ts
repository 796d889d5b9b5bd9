/**
 * Child process of crash.test.ts: appends to a FileStore under sync flush until it is killed, and
 * prints one line per acknowledged append: `seq queueId queueOffset commitLogOffset`.
 *
 * Run under plain Node with the swc hook:
 *   node -r test/support/swc-register.js test/store/crash-child.ts <dir> <firstSeq> <concurrency> <derivedFlushIntervalMs>
 *
 * It stops on its own (and closes the store) after CRASH_CHILD_MAX_RUN_MS, so a parent that dies
 * never leaves it running for long.
 */
import { createHash } from 'node:crypto';
import { FileStore } from '../../src/store/file-store';

export const CRASH_TOPIC = 'crash-test';
export const CRASH_QUEUES = 4;
/** Small segments, so segments roll (and padding is written) many times per round. */
export const CRASH_SEGMENT_SIZE_BYTES = 64 * 1024;
export const CRASH_CHILD_MAX_RUN_MS = 15_000;
/**
 * Small key-index files, so they seal (and their slots leave the heap) during the run and kills land
 * while sealed files are being flushed. (Every acknowledged key is queried after each round, and a
 * query consults every file: much smaller files make the test slow.)
 */
export const CRASH_INDEX_ENTRIES_PER_FILE = 2048;
export const CRASH_INDEX_SLOTS_PER_FILE = 512;

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * A self-checking body: `<id> <queueId> <padding> <hash of what precedes>`. The padding length
 * varies with the id so record sizes vary and segment ends fall at many different places.
 */
export function crashBody(id: string, queueId: number): Buffer {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  const text = `${id} ${queueId} ${'x'.repeat(h % 311)}`;
  return Buffer.from(`${text} ${digest(text)}`);
}

/** Parses and verifies a body written by {@link crashBody}; `undefined` when it is not intact. */
export function parseCrashBody(body: Buffer): { id: string; queueId: number } | undefined {
  const text = body.toString('utf8');
  const cut = text.lastIndexOf(' ');
  if (cut < 0 || digest(text.slice(0, cut)) !== text.slice(cut + 1)) return undefined;
  const [id, queueId] = text.split(' ');
  return { id: id!, queueId: Number(queueId) };
}

async function main(): Promise<void> {
  const [dir, firstSeqArg, concurrencyArg, derivedFlushArg] = process.argv.slice(2);
  if (!dir || !firstSeqArg || !concurrencyArg || !derivedFlushArg) {
    throw new Error('usage: crash-child <dir> <firstSeq> <concurrency> <derivedFlushIntervalMs>');
  }
  const store = await FileStore.open({
    dir,
    segmentSizeBytes: CRASH_SEGMENT_SIZE_BYTES,
    flushMode: 'sync',
    retentionIntervalMs: 0,
    derivedFlushIntervalMs: Number(derivedFlushArg),
    indexEntriesPerFile: CRASH_INDEX_ENTRIES_PER_FILE,
    indexSlotsPerFile: CRASH_INDEX_SLOTS_PER_FILE,
  });
  const deadline = Date.now() + CRASH_CHILD_MAX_RUN_MS;
  let seq = Number(firstSeqArg);
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const mine = seq++;
      const queueId = mine % CRASH_QUEUES;
      const result = await store.append({
        topic: CRASH_TOPIC,
        queueId,
        body: crashBody(String(mine), queueId),
        tag: `t${mine % 3}`,
        keys: [`k${mine}`],
        bornTimestampMs: Date.now(),
      });
      // Writes to a pipe are synchronous on Linux: once this returns the line is the parent's.
      process.stdout.write(`${mine} ${queueId} ${result.queueOffset} ${result.commitLogOffset}\n`);
    }
  };
  await Promise.all(Array.from({ length: Number(concurrencyArg) }, worker));
  await store.close();
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`crash-child failed: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  });
}
