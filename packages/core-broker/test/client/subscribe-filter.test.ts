import { RocketError } from '../../src/common/errors';
import { PullConsumer } from '../../src/client/pull-consumer';
import { PushConsumer } from '../../src/client/push-consumer';
import { SimpleConsumer } from '../../src/client/simple-consumer';
import type { Transport } from '../../src/client/transport';

// issue 15 #7: every consumer rejects a SQL92 filter that does not parse at subscribe(), with
// INVALID_FILTER, the position and what the parser expected — never a consumer that starts and
// then receives nothing. The expressions are those of the report; each row gives the column and
// the expected token the message must name.
const MALFORMED: ReadonlyArray<[string, number, string]> = [
  ["a > AND region = 'eu'", 5, 'expected an operand'],
  ["region = 'eu", 10, 'unterminated string literal'],
  ['a BETWEEN 3', 12, 'expected AND between the bounds of BETWEEN'],
  ['a >>> 5', 4, 'expected an operand'],
  ['(a > 1', 7, "expected ')'"],
];

// subscribe() must fail before any broker is reached: a transport that fails every call proves it
const unreachable = new Proxy({} as Transport, {
  get: () => () => {
    throw new Error('subscribe() must not reach the transport');
  },
});

const consumers: Record<string, (sql: string) => unknown> = {
  PushConsumer: (sql) =>
    new PushConsumer({ group: 'G', transport: unreachable }).subscribe('Orders', { sql }),
  PullConsumer: (sql) =>
    new PullConsumer({ group: 'G', transport: unreachable }).subscribe('Orders', { sql }),
  SimpleConsumer: (sql) =>
    new SimpleConsumer({ group: 'G', transport: unreachable }).subscribe('Orders', { sql }),
};

describe.each(Object.keys(consumers))('%s.subscribe() with a malformed SQL92 filter', (name) => {
  const subscribe = consumers[name]!;

  test.each(MALFORMED)('%j is INVALID_FILTER at column %i (%s)', (sql, column, expected) => {
    let thrown: unknown;
    try {
      subscribe(sql);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RocketError);
    expect((thrown as RocketError).code).toBe('INVALID_FILTER');
    expect((thrown as RocketError).retriable).toBe(false);
    expect((thrown as RocketError).message).toContain(expected);
    expect((thrown as RocketError).message).toContain(`line 1, column ${column}`);
  });

  test('a valid SQL92 filter and a tag expression are accepted', () => {
    expect(() => subscribe("a > 1 AND region = 'eu'")).not.toThrow();
  });
});
