import {
  commitOffsetRequestCodec,
  groupQueueRequestCodec,
  offsetResponseCodec,
  optionalOffsetResponseCodec,
  queueRequestCodec,
  searchOffsetRequestCodec,
} from '../../src/remoting/offsets-codec';
import { expectGolden } from './golden';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('offsets-codec.ts golden bytes (its layout table)', () => {
  test('groupQueueRequest', () => {
    expectGolden(groupQueueRequestCodec, samples.groupQueueRequest, {
      header: '01000000010043010054',
      body: '',
    });
  });

  test('commitOffsetRequest', () => {
    expectGolden(commitOffsetRequestCodec, samples.commitOffsetRequest, {
      header: '010000000201000000000000010043010054',
      body: '',
    });
  });

  test('queueRequest', () => {
    expectGolden(queueRequestCodec, samples.queueRequest, {
      header: '01000000010054',
      body: '',
    });
  });

  test('searchOffsetRequest', () => {
    expectGolden(searchOffsetRequestCodec, samples.searchOffsetRequest, {
      header: '010000000504030201000000010054',
      body: '',
    });
  });

  test('offsetResponse', () => {
    expectGolden(offsetResponseCodec, samples.offsetResponse, {
      header: '0700000000000000',
      body: '',
    });
  });

  test('optionalOffsetResponse', () => {
    expectGolden(optionalOffsetResponseCodec, samples.optionalOffsetResponse, {
      header: '010700000000000000',
      body: '',
    });
  });

  test('optionalOffsetResponseEmpty', () => {
    expectGolden(optionalOffsetResponseCodec, samples.optionalOffsetResponseEmpty, {
      header: '00',
      body: '',
    });
  });
});
