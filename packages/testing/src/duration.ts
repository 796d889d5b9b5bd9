import { RocketError } from '@rocketnest/core-broker';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration for the test kit: milliseconds, or a string such as `'250ms'`, `'30s'`, `'2m'`, `'1h'`, `'1d'`, `'1m30s'`. */
export type Duration = number | string;

/** The duration in ms; anything else is `INVALID_ARGUMENT`. */
export function toMs(duration: Duration): number {
  if (typeof duration === 'number') {
    if (!Number.isSafeInteger(duration) || duration < 0) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `a duration must be a non-negative integer of ms; got ${duration}`,
      );
    }
    return duration;
  }
  const parts = typeof duration === 'string' ? [...duration.matchAll(/(\d+)(ms|s|m|h|d)/g)] : [];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== duration) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `a duration is ms or a string like '250ms', '30s', '2m', '1h', '1m30s'; got ${JSON.stringify(duration)}`,
    );
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
}
