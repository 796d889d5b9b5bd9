/** What retention knows of one commit-log segment, oldest first. */
export interface SegmentFacts {
  sizeBytes: number;
  /** When the segment was last written (store time of the next segment's first record); unknown for the newest. */
  lastWriteMs: number | undefined;
}

export interface RetentionPolicy {
  nowMs: number;
  fileReservedTimeMs: number;
  diskMaxUsedRatio: number;
  diskFullRatio: number;
  deleteSegmentsPerRun: number;
}

export interface RetentionDecision {
  /** How many of the oldest segments to delete. */
  deleteCount: number;
  usedRatioBefore: number;
  usedRatioAfter: number;
  /** Appends must be refused until a later run frees space. */
  diskFull: boolean;
}

/**
 * Chooses the oldest segments to delete: those past `fileReservedTimeMs`, and more while the disk
 * is above `diskMaxUsedRatio` (RocketMQ's `CleanCommitLogService`). The newest segment, the one
 * being written, is never chosen. Pure, so every choice is unit-tested.
 */
export function decideRetention(
  segments: readonly SegmentFacts[],
  disk: { totalBytes: number; freeBytes: number },
  policy: RetentionPolicy,
): RetentionDecision {
  const total = Math.max(1, disk.totalBytes);
  let used = total - disk.freeBytes;
  const usedRatioBefore = used / total;
  let deleteCount = 0;
  while (deleteCount < policy.deleteSegmentsPerRun && deleteCount < segments.length - 1) {
    const segment = segments[deleteCount]!;
    const expired =
      segment.lastWriteMs !== undefined && segment.lastWriteMs < policy.nowMs - policy.fileReservedTimeMs;
    const overUsed = used / total > policy.diskMaxUsedRatio;
    if (!expired && !overUsed) break;
    used -= segment.sizeBytes;
    deleteCount++;
  }
  const usedRatioAfter = used / total;
  return { deleteCount, usedRatioBefore, usedRatioAfter, diskFull: usedRatioAfter > policy.diskFullRatio };
}
