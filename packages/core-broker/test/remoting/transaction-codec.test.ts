import { endTransactionRequestCodec, transactionCheckCodec } from '../../src/remoting/transaction-codec';
import { expectGolden } from './golden';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('transaction-codec.ts golden bytes (its layout table)', () => {
  test('endTransactionRequest', () => {
    expectGolden(endTransactionRequestCodec, samples.endTransactionRequest, {
      header: '0101010050010058',
      body: '',
    });
  });

  test('transactionCheck', () => {
    expectGolden(transactionCheckCodec, samples.transactionCheck, {
      header: '02000000010042010050010058',
      body:
        '01010000006400000007000000080000000200000000000000030000000000000005000000000000' +
        '0006000000000000000400000000000000090000000000000001004d010054010061010001006b01' +
        '00680100730100010070010076020000006869',
    });
  });
});
