import {
  brokerRegistrationCodec,
  brokerUnregistrationCodec,
  topicRouteCodec,
  topicRouteRequestCodec,
} from '../../src/remoting/route-codec';
import { expectGolden } from './golden';
import { samples } from './golden-samples';

// Bytes captured from the single protocol codec before it was split by domain: the wire must not change.
describe('route-codec.ts golden bytes (its layout table)', () => {
  test('topicRouteRequest', () => {
    expectGolden(topicRouteRequestCodec, samples.topicRouteRequest, {
      header: '010054',
      body: '',
    });
  });

  test('topicRoute', () => {
    expectGolden(topicRouteCodec, samples.topicRoute, {
      // the slave list (u16 count, then u16 id + str address each) was added with replication
      header:
        '0100540200010042040000000200000006010300613a310000' +
        '010043010000000100000002000000010001000300633a32',
      body: '',
    });
  });

  test('brokerUnregistration', () => {
    expectGolden(brokerUnregistrationCodec, samples.brokerUnregistration, {
      header: '0100420100',
      body: '',
    });
  });

  test('brokerRegistration', () => {
    expectGolden(brokerRegistrationCodec, samples.brokerRegistration, {
      header:
        '7b22636c75737465724e616d65223a224b222c2262726f6b65724e616d65223a2242222c2262726f' +
        '6b65724964223a302c2261646472657373223a22613a31222c22746f70696373223a5b5d7d',
      body: '',
    });
  });
});
