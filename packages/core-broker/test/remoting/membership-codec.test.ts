import {
  clientIdRequestCodec,
  clientIdsResponseCodec,
  groupRequestCodec,
  heartbeatRequestCodec,
  offsetResetNoticeCodec,
} from '../../src/remoting/membership-codec';
import { expectGolden } from './golden';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('membership-codec.ts golden bytes (its layout table)', () => {
  test('heartbeatRequest', () => {
    expectGolden(heartbeatRequestCodec, samples.heartbeatRequest, {
      header: '010049010001005001000100430101010000010054010000002a',
      body: '',
    });
  });

  test('clientIdRequest', () => {
    expectGolden(clientIdRequestCodec, samples.clientIdRequest, {
      header: '010049',
      body: '',
    });
  });

  test('groupRequest', () => {
    expectGolden(groupRequestCodec, samples.groupRequest, {
      header: '010043',
      body: '',
    });
  });

  test('clientIdsResponse', () => {
    expectGolden(clientIdsResponseCodec, samples.clientIdsResponse, {
      header: '0200000001004901004a',
      body: '',
    });
  });

  test('offsetResetNotice', () => {
    expectGolden(offsetResetNoticeCodec, samples.offsetResetNotice, {
      header: '01004301005401004201000000010000000200000000000000',
      body: '',
    });
  });
});
