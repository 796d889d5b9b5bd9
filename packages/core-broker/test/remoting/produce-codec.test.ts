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
});
