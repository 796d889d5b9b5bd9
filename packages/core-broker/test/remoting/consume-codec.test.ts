import {
  lockedQueuesCodec,
  pullRequestCodec,
  pullResponseCodec,
  queueLockRequestCodec,
  sendBackRequestCodec,
  sendBackResponseCodec,
} from '../../src/remoting/consume-codec';
import { expectGolden } from './golden';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('consume-codec.ts golden bytes (its layout table)', () => {
  test('pullRequest', () => {
    expectGolden(pullRequestCodec, samples.pullRequest, {
      header:
        '030100000020000000e8030000020000000000000001000000000000000100430100540101005403' + '000000613e31',
      body: '',
    });
  });

  test('pullResponse', () => {
    expectGolden(pullResponseCodec, samples.pullResponse, {
      header: '00030000000000000000000000000000000300000000000000',
      body:
        '01000000010100000064000000070000000800000002000000000000000300000000000000050000' +
        '000000000006000000000000000400000000000000090000000000000001004d0100540100610100' +
        '01006b0100680100730100010070010076020000006869',
    });
  });

  test('sendBackRequest', () => {
    expectGolden(sendBackRequestCodec, samples.sendBackRequest, {
      header: '03e8030000000000000300000001004301004d',
      body: '',
    });
  });

  test('sendBackResponse', () => {
    expectGolden(sendBackResponseCodec, samples.sendBackResponse, {
      header: '01',
      body: '',
    });
  });

  test('queueLockRequest', () => {
    expectGolden(queueLockRequestCodec, samples.queueLockRequest, {
      header: '010043010049010001005401000000',
      body: '',
    });
  });

  test('lockedQueues', () => {
    expectGolden(lockedQueuesCodec, samples.lockedQueues, {
      header: '010001005402000000',
      body: '',
    });
  });
});

describe('pull responses of many messages', () => {
  const view = samples.pullResponse.messages[0]!;
  test('topics and hosts that change from one message to the next decode as sent (per-field memos)', () => {
    const messages = [
      { ...view, topic: 'a', bornHost: 'h1:1', storeHost: 's1:1' },
      { ...view, topic: 'a', bornHost: 'h1:1', storeHost: 's1:1' },
      { ...view, topic: 'b', bornHost: 'h1:2', storeHost: 's1:1' },
      { ...view, topic: 'ä', bornHost: 'h1:1', storeHost: 's2:1' },
      { ...view, topic: 'a', bornHost: 'h1:1', storeHost: 's1:1' },
    ];
    for (let round = 0; round < 2; round++) {
      const decoded = pullResponseCodec.decode(
        pullResponseCodec.encode({ ...samples.pullResponse, messages }),
      );
      expect(decoded.messages.map((m) => [m.topic, m.bornHost, m.storeHost])).toEqual(
        messages.map((m) => [m.topic, m.bornHost, m.storeHost]),
      );
    }
  });

  test('a property named __proto__ is data, not a prototype change', () => {
    const properties = JSON.parse('{"__proto__":"x","k":"v"}') as Record<string, string>;
    const decoded = pullResponseCodec.decode(
      pullResponseCodec.encode({ ...samples.pullResponse, messages: [{ ...view, properties }] }),
    );
    const got = decoded.messages[0]!.properties;
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.keys(got).sort()).toEqual(['__proto__', 'k']);
    expect(Object.getOwnPropertyDescriptor(got, '__proto__')?.value).toBe('x');
  });
});
