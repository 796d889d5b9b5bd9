import { CODECS_BY_CODE as OPERATIONS } from '../../src/remoting/operation-codecs';
import { offsetResetNoticeCodec } from '../../src/remoting/protocol-codec';
import { RequestCode } from '../../src/remoting/request-codes';

describe('offsetResetNoticeCodec (RESET_CONSUMER_CLIENT_OFFSET)', () => {
  const notice = { group: 'G', topic: 'T', brokerName: 'b', offsets: [{ queueId: 1, offset: 2 }] };

  test('golden bytes: str group, str topic, str brokerName, u32 n, n × (u32 queueId, u64 offset)', () => {
    const { header, body } = offsetResetNoticeCodec.encode(notice);
    expect(body).toHaveLength(0);
    expect(header.toString('hex')).toBe(
      ['010047', '010054', '010062', '01000000', '01000000', '0200000000000000'].join(''),
    );
    expect(offsetResetNoticeCodec.decode({ header, body })).toEqual(notice);
  });

  test('is the one-way operation of its code; a truncated notice is a PROTOCOL_ERROR', () => {
    expect(OPERATIONS[RequestCode.RESET_CONSUMER_CLIENT_OFFSET].request).toBe(offsetResetNoticeCodec);
    const { header } = offsetResetNoticeCodec.encode(notice);
    expect(() =>
      offsetResetNoticeCodec.decode({ header: header.subarray(0, -1), body: Buffer.alloc(0) }),
    ).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
  });
});
