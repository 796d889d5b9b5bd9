import { isRocketError } from '@rocketnest/core-broker';
import type { RocketListenerOptions } from '../src';
import { listenerFor, planSubscriptions } from '../src/subscription-plan';

function listener(handlerName: string, topic: string, tag = '*', options: RocketListenerOptions = {}) {
  return { metadata: { topic, tag, options, handlerName }, handler: handlerName };
}

function planError(...listeners: ReturnType<typeof listener>[]): Error {
  try {
    planSubscriptions(listeners, 'default-group');
  } catch (error) {
    expect(isRocketError(error)).toBe(true);
    return error as Error;
  }
  throw new Error('expected a conflict');
}

describe('planSubscriptions', () => {
  it('merges the tags of one group and topic into one subscription and routes by tag', () => {
    const plans = planSubscriptions(
      [
        listener('A.created', 'orders', 'created'),
        listener('A.paid', 'orders', 'paid || refunded'),
        listener('B.all', 'payments'),
      ],
      'default-group',
    );
    expect([...plans.keys()]).toEqual(['default-group']);
    const orders = plans.get('default-group')!.topics.get('orders')!;
    expect(orders.expression).toBe('created || paid || refunded');
    expect(listenerFor(orders, 'refunded')!.handler).toBe('A.paid');
    expect(listenerFor(orders, 'shipped')).toBeUndefined();
    expect(listenerFor(orders, undefined)).toBeUndefined();
    expect(plans.get('default-group')!.topics.get('payments')!.expression).toBe('*');
  });

  it('one consumer per group; settings left unset agree with any value', () => {
    const plans = planSubscriptions(
      [
        listener('A.x', 'orders', 'x', { group: 'g1', consumeMode: 'ORDERLY' }),
        listener('A.y', 'orders', 'y', { group: 'g1' }),
        listener('A.z', 'orders', 'z', { group: 'g2', messageModel: 'BROADCASTING', concurrency: 2 }),
        listener('A.sql', 'orders', '*', { group: 'g3', sql: 'a > 1' }),
      ],
      'default-group',
    );
    expect([...plans.keys()]).toEqual(['g1', 'g2', 'g3']);
    expect(plans.get('g1')!.settings).toEqual({ consumeMode: 'ORDERLY' });
    expect(plans.get('g2')!.settings).toEqual({ messageModel: 'BROADCASTING', concurrency: 2 });
    expect(plans.get('g3')!.topics.get('orders')!.expression).toEqual({ sql: 'a > 1' });
  });

  it('names both handlers of every conflict', () => {
    expect(planError(listener('A.one', 't', 'x'), listener('B.two', 't', 'y || x')).message).toMatch(
      /A\.one and B\.two both listen to tag "x" in group "default-group", topic "t"/,
    );
    expect(
      planError(listener('A.sql', 't', '*', { sql: 'a = 1' }), listener('B.tag', 't', 'x')).message,
    ).toMatch(/A\.sql and B\.tag .* filters by SQL/);
    expect(
      planError(listener('A.s1', 't', '*', { sql: 'a = 1' }), listener('B.s2', 't', '*', { sql: 'a = 1' }))
        .message,
    ).toMatch(/A\.s1 and B\.s2/);
    expect(planError(listener('A.tag', 't', 'x'), listener('B.all', 't')).message).toMatch(/takes every tag/);
    expect(
      planError(
        listener('A.push', 't', 'x', { consumerType: 'push' }),
        listener('B.pop', 'u', 'y', { consumerType: 'simple' }),
      ).message,
    ).toMatch(
      /A\.push and B\.pop share consumer group "default-group" but set consumerType to push and simple/,
    );
    expect(
      planError(
        listener('A.r1', 't', 'x', { maxReconsumeTimes: 3 }),
        listener('B.r2', 't', 'y', { maxReconsumeTimes: 5 }),
      ).message,
    ).toMatch(/maxReconsumeTimes to 3 and 5/);
  });

  it('rejects out-of-range and unknown option values, naming the handler', () => {
    expect(() => planSubscriptions([listener('A.pop', 't', 'x', { invisibleTimeMs: 500 })], 'g')).toThrow(
      /A\.pop: @RocketListener option invisibleTimeMs must be an integer in \[10000, 43200000\]; got 500/,
    );
    expect(() => planSubscriptions([listener('A.c', 't', 'x', { concurrency: 0 })], 'g')).toThrow(
      /concurrency/,
    );
    expect(() => planSubscriptions([listener('A.r', 't', 'x', { retryDelayMs: -1 })], 'g')).toThrow(
      /retryDelayMs/,
    );
    expect(() =>
      planSubscriptions([listener('A.m', 't', 'x', { consumeMode: 'orderly' as never })], 'g'),
    ).toThrow(/consumeMode must be CONCURRENTLY or ORDERLY; got orderly/);
  });

  it('pop groups reject broadcasting, orderly and a per-consumer retry limit', () => {
    expect(() =>
      planSubscriptions(
        [
          listener('A.pop', 't', 'x', { consumerType: 'simple' }),
          listener('B.fifo', 'u', 'y', { consumeMode: 'ORDERLY' }),
        ],
        'g',
      ),
    ).toThrow(/B\.fifo: consumer group "g" is consumerType 'simple' and cannot set consumeMode ORDERLY/);
    expect(() =>
      planSubscriptions(
        [listener('A.b', 't', 'x', { consumerType: 'simple', messageModel: 'BROADCASTING' })],
        'g',
      ),
    ).toThrow(/broadcasting needs push/);
    expect(() =>
      planSubscriptions([listener('A.m', 't', 'x', { consumerType: 'simple', maxReconsumeTimes: 3 })], 'g'),
    ).toThrow(/broker's maxReconsumeTimes/);
  });

  it('rejects a tag expression that is not a list of tags', () => {
    expect(() => planSubscriptions([listener('A.bad', 't', 'x || ')], 'g')).toThrow(/is not a list of tags/);
  });
});
