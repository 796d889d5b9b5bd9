/** What retention knows of one commit-log segment, oldest first. */
export interface SegmentFacts {
  sizeBytes: number;
  /** When the segment was last written (store time of the next segment's first record); unknown for the newest. */
  lastWriteMs: number | undefined;
}

export interface RetentionPolicy {
  nowMs: number;
  fileReservedTimeMs: number;
  /** Usage past which unexpired segments are deleted, when `deleteUnexpired`. */
  diskCleanForciblyRatio: number;
  /** Whether unexpired segments may be deleted at all (`diskPressurePolicy: 'delete-oldest'`). */
  deleteUnexpired: boolean;
  /** Usage past which appends are refused. */
  refuseWritesRatio: number;
  deleteSegmentsPerRun: number;
}

export interface RetentionDecision {
  /** How many of the oldest segments to delete: first the expired ones, then the forced ones. */
  deleteCount: number;
  /** How many of those (the oldest `expiredCount`) had expired; the rest are deleted by force. */
  expiredCount: number;
  usedRatioBefore: number;
  usedRatioAfter: number;
  /** Appends must be refused until a later run (or freed space) brings usage down. */
  diskFull: boolean;
}

/**
 * Chooses the oldest segments to delete (RocketMQ's `CleanCommitLogService`): those last written
 * more than `fileReservedTimeMs` ago, and — only while usage is over `diskCleanForciblyRatio` and
 * the policy allows it — younger ones, until usage is back under that ratio. The newest segment,
 * the one being written, is never chosen. Pure, so every choice is unit-tested.
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
  let expiredCount = 0;
  while (deleteCount < policy.deleteSegmentsPerRun && deleteCount < segments.length - 1) {
    const segment = segments[deleteCount]!;
    // segments are oldest first, so the expired ones are a prefix: none after a forced one
    const expired =
      deleteCount === expiredCount &&
      segment.lastWriteMs !== undefined &&
      segment.lastWriteMs < policy.nowMs - policy.fileReservedTimeMs;
    const forced = policy.deleteUnexpired && used / total > policy.diskCleanForciblyRatio;
    if (!expired && !forced) break;
    if (expired) expiredCount++;
    used -= segment.sizeBytes;
    deleteCount++;
  }
  const usedRatioAfter = used / total;
  return {
    deleteCount,
    expiredCount,
    usedRatioBefore,
    usedRatioAfter,
    diskFull: usedRatioAfter > policy.refuseWritesRatio,
  };
}
