import { LatencyFaultTolerance, notAvailableFor } from '../../src/client/latency-fault-tolerance';

describe('LatencyFaultTolerance', () => {
  test('maps a send latency to how long its broker is avoided (RocketMQ 5 table)', () => {
    expect([0, 49, 50, 99, 100, 549].map(notAvailableFor)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(notAvailableFor(550)).toBe(2000);
    expect(notAvailableFor(1800)).toBe(5000);
    expect(notAvailableFor(3000)).toBe(6000);
    expect(notAvailableFor(5000)).toBe(10000);
    expect(notAvailableFor(15000)).toBe(30000);
    expect(notAvailableFor(1e9)).toBe(30000);
  });

  test('a failure avoids the broker for 10 s; a fast send afterwards clears it', () => {
    let now = 1000;
    const faults = new LatencyFaultTolerance(() => now);
    faults.record('broker-a', 3, true);
    expect(faults.isAvailable('broker-a')).toBe(false);
    expect(faults.availableAt('broker-a')).toBe(11_000);
    expect(faults.isAvailable('broker-b')).toBe(true);
    now = 10_999;
    expect(faults.isAvailable('broker-a')).toBe(false);
    now = 11_000;
    expect(faults.isAvailable('broker-a')).toBe(true);
    faults.record('broker-a', 600, false);
    expect(faults.isAvailable('broker-a')).toBe(false);
    faults.record('broker-a', 2, false);
    expect(faults.isAvailable('broker-a')).toBe(true);
  });

  test('stays bounded however many brokers it hears of', () => {
    const now = 0;
    const faults = new LatencyFaultTolerance(() => now);
    for (let i = 0; i < 10_000; i++) faults.record(`broker-${i}`, 0, true);
    let avoided = 0;
    for (let i = 0; i < 10_000; i++) if (!faults.isAvailable(`broker-${i}`)) avoided++;
    expect(avoided).toBe(4096);
    expect(faults.isAvailable('broker-9999')).toBe(false);
  });
});
