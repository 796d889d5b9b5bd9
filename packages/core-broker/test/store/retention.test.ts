import { FileStore } from '../../src/store/file-store';
import { MemoryFileSystem } from '../../src/store/file-system';
import { decideRetention } from '../../src/store/retention';
import type { StoreEvent } from '../../src/store/store-events';
import type { FileStoreOptions } from '../../src/store/store-options';
import { ManualClock } from '../support/manual-clock';
import type { RetentionPolicy, SegmentFacts } from '../../src/store/retention';
import {
  DEFAULT_DISK_CLEAN_FORCIBLY_RATIO,
  DEFAULT_DISK_FULL_RATIO,
  DEFAULT_DISK_MAX_USED_RATIO,
  DEFAULT_DISK_PRESSURE_POLICY,
  resolveStoreOptions,
} from '../../src/store/store-options';

const HOUR = 3600_000;
const NOW = 1_000 * HOUR;
const policy: RetentionPolicy = {
  nowMs: NOW,
  fileReservedTimeMs: 72 * HOUR,
  diskCleanForciblyRatio: 0.85,
  deleteUnexpired: true,
  refuseWritesRatio: 0.9,
  deleteSegmentsPerRun: 10,
};
const GiB = 1024 ** 3;
const seg = (ageHours: number | undefined, sizeBytes = GiB): SegmentFacts => ({
  sizeBytes,
  lastWriteMs: ageHours === undefined ? undefined : NOW - ageHours * HOUR,
});
const disk = (usedRatio: number, totalBytes = 100 * GiB) => ({
  totalBytes,
  freeBytes: totalBytes * (1 - usedRatio),
});

describe('retention choices', () => {
  test("defaults are RocketMQ's: diskMaxUsedSpaceRatio 75, diskSpaceCleanForciblyRatio 85, diskSpaceWarningLevelRatio 90, cleanFileForciblyEnable", () => {
    expect(DEFAULT_DISK_MAX_USED_RATIO).toBe(0.75);
    expect(DEFAULT_DISK_CLEAN_FORCIBLY_RATIO).toBe(0.85);
    expect(DEFAULT_DISK_FULL_RATIO).toBe(0.9);
    expect(DEFAULT_DISK_PRESSURE_POLICY).toBe('delete-oldest');
    const o = resolveStoreOptions({ dir: '/x' });
    expect([o.diskMaxUsedRatio, o.diskCleanForciblyRatio, o.diskFullRatio]).toEqual([0.75, 0.85, 0.9]);
  });
  test('ratios must be ordered: diskMaxUsedRatio ≤ diskCleanForciblyRatio ≤ diskFullRatio; the policy is one of two', () => {
    expect(() => resolveStoreOptions({ dir: '/x', diskCleanForciblyRatio: 0.7 })).toThrow(
      /diskCleanForciblyRatio must be ≥ diskMaxUsedRatio/,
    );
    expect(() => resolveStoreOptions({ dir: '/x', diskFullRatio: 0.8 })).toThrow(
      /diskFullRatio must be ≥ diskCleanForciblyRatio/,
    );
    expect(() =>
      resolveStoreOptions({ dir: '/x', diskPressurePolicy: 'drop' as unknown as 'refuse-writes' }),
    ).toThrow(/diskPressurePolicy must be 'delete-oldest' or 'refuse-writes'/);
  });
  test('deletes only segments older than fileReservedTime, oldest first, stopping at the first young one', () => {
    const segments = [seg(100), seg(80), seg(10), seg(90), seg(undefined)];
    expect(decideRetention(segments, disk(0.1), policy)).toMatchObject({ deleteCount: 2, expiredCount: 2 });
  });
  test('never deletes the segment being written, however old or full', () => {
    expect(decideRetention([seg(undefined)], disk(0.99), policy).deleteCount).toBe(0);
    expect(decideRetention([seg(1000), seg(undefined)], disk(0.99), policy).deleteCount).toBe(1);
  });
  test('between diskMaxUsedRatio and diskCleanForciblyRatio, unexpired segments are kept (issue 15 #9)', () => {
    const segments = [seg(1), seg(1), seg(1), seg(1), seg(undefined)];
    for (const used of [0.76, 0.8, 0.85])
      expect(decideRetention(segments, disk(used), policy)).toMatchObject({
        deleteCount: 0,
        diskFull: false,
      });
  });
  test('over diskCleanForciblyRatio, deletes young segments too until usage is back under it', () => {
    const segments = [seg(1), seg(1), seg(1), seg(1), seg(undefined)];
    const decision = decideRetention(segments, disk(0.875), policy);
    expect(decision).toMatchObject({ deleteCount: 3, expiredCount: 0, diskFull: false }); // 87.5 → 86.5 → 85.5 → 84.5
    expect(decision.usedRatioAfter).toBeCloseTo(0.845, 5);
  });
  test('expired segments first, then forced ones; the counts tell them apart', () => {
    const segments = [seg(100), seg(90), seg(1), seg(1), seg(undefined)];
    expect(decideRetention(segments, disk(0.875), policy)).toMatchObject({ deleteCount: 3, expiredCount: 2 });
  });
  test("policy 'refuse-writes' (deleteUnexpired false) keeps unexpired segments however full, and reports the disk full", () => {
    const refuse = { ...policy, deleteUnexpired: false, refuseWritesRatio: 0.85 };
    const segments = [seg(100), seg(1), seg(1), seg(undefined)];
    expect(decideRetention(segments, disk(0.97), refuse)).toMatchObject({
      deleteCount: 1,
      expiredCount: 1,
      diskFull: true,
    });
    expect(decideRetention([seg(1), seg(undefined)], disk(0.84), refuse).diskFull).toBe(false);
  });
  test('bounded per run by deleteSegmentsPerRun', () => {
    const segments = Array.from({ length: 30 }, () => seg(500));
    expect(decideRetention(segments, disk(0.1), { ...policy, deleteSegmentsPerRun: 4 }).deleteCount).toBe(4);
  });
  test('reports disk full when even after deleting usage stays over the refusal ratio', () => {
    const decision = decideRetention([seg(1, GiB), seg(undefined)], disk(0.95), policy);
    expect(decision.deleteCount).toBe(1);
    expect(decision.usedRatioBefore).toBeCloseTo(0.95, 5);
    expect(decision.usedRatioAfter).toBeCloseTo(0.94, 5);
    expect(decision.diskFull).toBe(true);
    expect(decideRetention([seg(undefined)], disk(0.91), policy).diskFull).toBe(true);
    expect(decideRetention([seg(undefined)], disk(0.9), policy).diskFull).toBe(false);
  });
});

/**
 * The store's retention runs on a disk filled slowly by something else (issue 15 #9): from 75%
 * nothing unexpired may go; from 85% the oldest segments go, with a warning naming the topics,
 * queues and offset ranges, counted in `stats()`; `diskPressurePolicy: 'refuse-writes'` refuses
 * appends instead.
 */
describe('store retention under disk pressure (MemoryFileSystem)', () => {
  const TOPIC = 'retention-test';
  const SEGMENT = 8 * 1024;
  const TOTAL = 10_000_000;

  async function filled(extra: Partial<FileStoreOptions> = {}) {
    const fs = new MemoryFileSystem();
    fs.totalBytes = TOTAL;
    const clock = new ManualClock();
    const events: StoreEvent[] = [];
    const store = await FileStore.open({
      dir: '/stores/retention',
      segmentSizeBytes: SEGMENT,
      retentionIntervalMs: 0,
      clock,
      fileSystem: fs,
      onEvent: (e) => events.push(e),
      ...extra,
    });
    // ≈ 5 segments: 200 messages over 2 queues
    for (let i = 0; i < 200; i++)
      await store.append({ topic: TOPIC, queueId: i % 2, body: Buffer.alloc(150, i), bornTimestampMs: 1 });
    expect(store.commitLogRange().minOffset).toBe(0);
    return { fs, clock, events, store };
  }
  const storeBytes = (fs: MemoryFileSystem) => TOTAL - fs.otherUsedBytes - fs.diskUsage().freeBytes;

  test('at 80% used (over diskMaxUsedRatio, under diskCleanForciblyRatio) unexpired segments stay; the pressure is reported', async () => {
    const { fs, events, store } = await filled();
    fs.otherUsedBytes = 0.8 * TOTAL - storeBytes(fs);
    const report = store.runRetention();
    expect(report.deletedSegments).toBe(0);
    expect(report.diskUsedRatio).toBeCloseTo(0.8, 5);
    expect(store.minOffset(TOPIC, 0)).toBe(0);
    expect(store.getMessages(TOPIC, 0, 0, { maxCount: 1 }).status).toBe('FOUND');
    expect(events).toEqual([
      { type: 'store.disk.pressure', dir: '/stores/retention', usedRatio: report.diskUsedRatio },
    ]);
    expect(store.stats()).toMatchObject({ diskPressure: true, diskFull: false, forcedSegmentsDeleted: 0 });
    await store.close();
  });

  test('over 85% the oldest unexpired segments are deleted with a warning naming topics, queues and offset ranges, counted in stats', async () => {
    const { fs, events, store } = await filled();
    fs.otherUsedBytes = 0.8505 * TOTAL - storeBytes(fs) + SEGMENT; // one segment over 85%
    const report = store.runRetention();
    expect(report.deletedSegments).toBeGreaterThanOrEqual(1);
    const forced = events.find((e) => e.type === 'store.retention.forced');
    const min0 = store.minOffset(TOPIC, 0);
    const min1 = store.minOffset(TOPIC, 1);
    expect(min0).toBeGreaterThan(0);
    expect(forced).toEqual({
      type: 'store.retention.forced',
      segments: report.deletedSegments,
      usedRatio: expect.any(Number),
      queues: [
        { topic: TOPIC, queueId: 0, fromOffset: 0, toOffset: min0 },
        { topic: TOPIC, queueId: 1, fromOffset: 0, toOffset: min1 },
      ],
    });
    expect(store.stats()).toMatchObject({
      forcedSegmentsDeleted: report.deletedSegments,
      forcedMessagesDeleted: min0 + min1,
      expiredSegmentsDeleted: 0,
    });
    expect(store.getMessages(TOPIC, 0, 0, { maxCount: 1 })).toMatchObject({
      status: 'OFFSET_TOO_SMALL',
      nextOffset: min0,
    });
    await store.close();
  });

  test('expired segments are deleted whatever the usage, reported as expired', async () => {
    const { clock, events, store } = await filled({ fileReservedTimeMs: 60_000 });
    clock.advance(61_000);
    const report = store.runRetention();
    expect(report.deletedSegments).toBeGreaterThanOrEqual(4);
    expect(events.map((e) => e.type)).toEqual(['store.retention.expired']);
    expect(store.stats()).toMatchObject({
      expiredSegmentsDeleted: report.deletedSegments,
      forcedSegmentsDeleted: 0,
    });
    await store.close();
  });

  test("'refuse-writes' keeps unexpired data over 85% and refuses appends with DISK_FULL until usage drops", async () => {
    const { fs, events, store } = await filled({ diskPressurePolicy: 'refuse-writes' });
    fs.otherUsedBytes = 0.9 * TOTAL - storeBytes(fs);
    const report = store.runRetention();
    expect(report.deletedSegments).toBe(0);
    expect(store.minOffset(TOPIC, 0)).toBe(0);
    const refused = await store
      .append({ topic: TOPIC, queueId: 0, body: Buffer.from('refused'), bornTimestampMs: 1 })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'DISK_FULL',
      retriable: true,
      message: expect.stringMatching(
        /\/stores\/retention .*diskCleanForciblyRatio \(diskPressurePolicy 'refuse-writes'\)=0\.85/,
      ),
    });
    expect(events.map((e) => e.type)).toEqual(['store.disk.full', 'store.disk.pressure']);
    fs.otherUsedBytes = 0;
    const taken = await store.append({
      topic: TOPIC,
      queueId: 0,
      body: Buffer.from('taken'),
      bornTimestampMs: 1,
    });
    expect(taken.queueOffset).toBe(100);
    expect(store.stats()).toMatchObject({ forcedSegmentsDeleted: 0, diskFullRejections: 1, diskFull: false });
    await store.close();
  });
});
