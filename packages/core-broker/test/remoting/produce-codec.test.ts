import { sendRequestCodec, sendResponseCodec } from '../../src/remoting/produce-codec';
import { expectGolden } from './golden';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('produce-codec.ts golden bytes (its layout table)', () => {
  test('sendRequest', () => {
    expectGolden(sendRequestCodec, samples.sendRequest, {
      header: '0f050403020100000003000000010050010054010068',
      body: '0100000001010054010061020000006869',
    });
  });

  test('sendResponse', () => {
    expectGolden(sendResponseCodec, samples.sendResponse, {
      header:
        '010042010054020000000001000000020000000000000001004d0101000000030000000000000001' + '004e010058',
      body: '',
    });
  });

  test("sendResponse with a sync master's status: bits 2 and 4 of every sent message", () => {
    const timedOut = { ...samples.sendResponse, status: 'FLUSH_SLAVE_TIMEOUT' as const };
    expectGolden(sendResponseCodec, timedOut, {
      header:
        '010042010054020000000201000000020000000000000001004d0301000000030000000000000001' + '004e010058',
      body: '',
    });
    const none = { ...samples.sendResponse, status: 'SLAVE_NOT_AVAILABLE' as const };
    expect(sendResponseCodec.decode(sendResponseCodec.encode(none))).toEqual(none);
    // SEND_OK is the absence of both bits: the bytes of a plain response
    const ok = sendResponseCodec.encode({ ...samples.sendResponse, status: 'SEND_OK' });
    expect(sendResponseCodec.decode(ok)).toEqual(samples.sendResponse);
    // messages of one response disagreeing on the status is a protocol error
    const header = Buffer.from(sendResponseCodec.encode(timedOut).header);
    header[26] = 0x01; // the second message's presence: transaction id only
    expect(() => sendResponseCodec.decode({ header, body: Buffer.alloc(0) })).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
    );
  });
});
