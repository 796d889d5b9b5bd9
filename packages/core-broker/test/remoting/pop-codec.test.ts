import {
  ackRequestCodec,
  changeInvisibleRequestCodec,
  popRequestCodec,
  popResponseCodec,
  receiptHandleResponseCodec,
} from '../../src/remoting/pop-codec';
import { expectGolden } from './golden';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('pop-codec.ts golden bytes (its layout table)', () => {
  test('popRequest', () => {
    expectGolden(popRequestCodec, samples.popRequest, {
      header: '01100000003075000000000000e803000000000000010043010054000100540100000061',
      body: '',
    });
  });

  test('popResponse', () => {
    expectGolden(popResponseCodec, samples.popResponse, {
      header: '',
      body:
        '01000000020000000100520101000000640000000700000008000000020000000000000003000000' +
        '00000000050000000000000006000000000000000400000000000000090000000000000001004d01' +
        '0054010061010001006b0100680100730100010070010076020000006869',
    });
  });

  test('ackRequest', () => {
    expectGolden(ackRequestCodec, samples.ackRequest, {
      header: '010043010054010052',
      body: '',
    });
  });

  test('changeInvisibleRequest', () => {
    expectGolden(changeInvisibleRequestCodec, samples.changeInvisibleRequest, {
      header: '60ea000000000000010043010054010052',
      body: '',
    });
  });

  test('receiptHandleResponse', () => {
    expectGolden(receiptHandleResponseCodec, samples.receiptHandleResponse, {
      header: '010052',
      body: '',
    });
  });
});
