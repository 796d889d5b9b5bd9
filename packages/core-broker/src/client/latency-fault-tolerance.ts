/**
 * Send latency thresholds and, at the same index, how long a broker is avoided after a send that
 * took at least that long (RocketMQ 5's `MQFaultStrategy.latencyMax` / `notAvailableDuration`).
 */
export const LATENCY_THRESHOLDS_MS: readonly number[] = [50, 100, 550, 1800, 3000, 5000, 15000];
export const NOT_AVAILABLE_MS: readonly number[] = [0, 0, 2000, 5000, 6000, 10000, 30000];
/** A failed send counts as this latency: the broker is avoided for 10 s (RocketMQ's isolation). */
export const FAILURE_LATENCY_MS = 10_000;
/** Most brokers remembered; expired entries go first when it is reached. */
const MAX_ENTRIES = 4096;

/**
 * Remembers which brokers were slow or failing (RocketMQ `LatencyFaultTolerance`), so a producer
 * prefers the others for a while. A broker is "available" again once its avoidance has run out;
 * when every broker of a route is being avoided the producer still sends (to the one whose
 * avoidance ends first), so the mechanism can delay no message, only steer it.
 */
export class LatencyFaultTolerance {
  /** `brokerName → epoch ms until which it is avoided`. */
  private readonly avoidUntil = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** Records a send's outcome: its latency, or a failure. */
  record(brokerName: string, latencyMs: number, failed: boolean): void {
    const duration = notAvailableFor(failed ? FAILURE_LATENCY_MS : latencyMs);
    if (duration === 0) {
      this.avoidUntil.delete(brokerName);
      return;
    }
    if (!this.avoidUntil.has(brokerName) && this.avoidUntil.size >= MAX_ENTRIES) this.prune();
    this.avoidUntil.set(brokerName, this.now() + duration);
  }

  isAvailable(brokerName: string): boolean {
    const until = this.avoidUntil.get(brokerName);
    return until === undefined || until <= this.now();
  }

  /** When `brokerName` becomes available again (epoch ms; 0 when it is). */
  availableAt(brokerName: string): number {
    const until = this.avoidUntil.get(brokerName) ?? 0;
    return until <= this.now() ? 0 : until;
  }

  private prune(): void {
    const now = this.now();
    for (const [name, until] of this.avoidUntil) if (until <= now) this.avoidUntil.delete(name);
    if (this.avoidUntil.size >= MAX_ENTRIES) {
      // still full of live entries: forget the one avoided longest ago (insertion order)
      const oldest = this.avoidUntil.keys().next().value as string;
      this.avoidUntil.delete(oldest);
    }
  }
}

/** How long a broker is avoided after a send of `latencyMs` (0: not at all). */
export function notAvailableFor(latencyMs: number): number {
  for (let i = LATENCY_THRESHOLDS_MS.length - 1; i >= 0; i--) {
    if (latencyMs >= LATENCY_THRESHOLDS_MS[i]!) return NOT_AVAILABLE_MS[i]!;
  }
  return 0;
}
