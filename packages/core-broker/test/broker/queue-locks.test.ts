import { QueueLocks } from '../../src/broker/queue-locks';

const q = (queueId: number, topic = 'T') => ({ topic, queueId });

describe('QueueLocks', () => {
  test('a queue held by one live member is refused to another; its own renewal succeeds', () => {
    const locks = new QueueLocks(60_000);
    expect(locks.lock('G', 'a', [q(0), q(1)], 0)).toEqual([q(0), q(1)]);
    expect(locks.lock('G', 'b', [q(1), q(2)], 1000)).toEqual([q(2)]);
    expect(locks.lock('G', 'a', [q(0), q(1), q(2)], 2000)).toEqual([q(0), q(1)]);
    expect(locks.holder('G', q(2), 2000)).toBe('b');
    // other groups and topics are separate
    expect(locks.lock('H', 'b', [q(0)], 2000)).toEqual([q(0)]);
    expect(locks.lock('G', 'b', [q(0, 'U')], 2000)).toEqual([q(0, 'U')]);
  });

  test('a lock not renewed for 60 s can be taken over; a renewed one cannot', () => {
    const locks = new QueueLocks(60_000);
    locks.lock('G', 'a', [q(0), q(1)], 0);
    locks.lock('G', 'a', [q(1)], 30_000);
    expect(locks.lock('G', 'b', [q(0), q(1)], 60_000)).toEqual([]);
    expect(locks.lock('G', 'b', [q(0), q(1)], 60_001)).toEqual([q(0)]);
    expect(locks.holder('G', q(0), 60_001)).toBe('b');
    expect(locks.holder('G', q(1), 90_001)).toBeUndefined();
  });

  test('unlock releases only the caller’s locks; a leaving client releases all of its own', () => {
    const locks = new QueueLocks();
    locks.lock('G', 'a', [q(0)], 0);
    locks.lock('G', 'b', [q(1)], 0);
    locks.unlock('G', 'b', [q(0), q(1)]);
    expect(locks.holder('G', q(0), 1)).toBe('a');
    expect(locks.holder('G', q(1), 1)).toBeUndefined();
    locks.lock('H', 'a', [q(5)], 0);
    locks.release('a');
    expect(locks.holder('G', q(0), 1)).toBeUndefined();
    expect(locks.holder('H', q(5), 1)).toBeUndefined();
  });
});
