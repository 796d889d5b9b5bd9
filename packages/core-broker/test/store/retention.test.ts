import { decideRetention } from '../../src/store/retention';
import type { RetentionPolicy, SegmentFacts } from '../../src/store/retention';

const HOUR = 3600_000;
const NOW = 1_000 * HOUR;
const policy: RetentionPolicy = {
  nowMs: NOW,
  fileReservedTimeMs: 72 * HOUR,
  diskMaxUsedRatio: 0.75,
  diskFullRatio: 0.85,
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
  test('deletes only segments older than fileReservedTime, oldest first, stopping at the first young one', () => {
    const segments = [seg(100), seg(80), seg(10), seg(90), seg(undefined)];
    expect(decideRetention(segments, disk(0.1), policy).deleteCount).toBe(2);
  });
  test('never deletes the segment being written, however old or full', () => {
    expect(decideRetention([seg(undefined)], disk(0.99), policy).deleteCount).toBe(0);
    expect(decideRetention([seg(1000), seg(undefined)], disk(0.99), policy).deleteCount).toBe(1);
  });
  test('over diskMaxUsedRatio, deletes young segments too until usage drops under it', () => {
    const segments = [seg(1), seg(1), seg(1), seg(1), seg(undefined)];
    const decision = decideRetention(segments, disk(0.78), policy);
    expect(decision.deleteCount).toBe(3); // 78% → 77 → 76 → 75 (not over 75%: stop)
    expect(decision.usedRatioAfter).toBeCloseTo(0.75, 5);
    expect(decision.diskFull).toBe(false);
  });
  test('at or under the ratio with young segments, deletes nothing', () => {
    expect(decideRetention([seg(1), seg(1), seg(undefined)], disk(0.75), policy).deleteCount).toBe(0);
  });
  test('bounded per run by deleteSegmentsPerRun', () => {
    const segments = Array.from({ length: 30 }, () => seg(500));
    expect(decideRetention(segments, disk(0.1), { ...policy, deleteSegmentsPerRun: 4 }).deleteCount).toBe(4);
  });
  test('reports disk full when even after deleting usage stays over diskFullRatio', () => {
    const decision = decideRetention([seg(1, GiB), seg(undefined)], disk(0.9), policy);
    expect(decision.deleteCount).toBe(1);
    expect(decision.usedRatioBefore).toBeCloseTo(0.9, 5);
    expect(decision.usedRatioAfter).toBeCloseTo(0.89, 5);
    expect(decision.diskFull).toBe(true);
    expect(decideRetention([seg(undefined)], disk(0.86), policy).diskFull).toBe(true);
    expect(decideRetention([seg(undefined)], disk(0.85), policy).diskFull).toBe(false);
  });
});
