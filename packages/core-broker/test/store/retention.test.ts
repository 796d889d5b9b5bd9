import { decideRetention } from '../../src/store/retention';
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
