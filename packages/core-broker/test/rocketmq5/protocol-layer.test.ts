import * as officialService from 'rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_pb';
import { sign as officialSign } from 'rocketmq-client-nodejs/dist/util';
import { METHODS, MessageType, toNumber } from '../../src/rocketmq5/codec';
import { isMessageIdV1, messageIdV1Generator } from '../../src/rocketmq5/message-id';
import { decodeGrpcReceiptHandle, encodeGrpcReceiptHandle } from '../../src/rocketmq5/receipt-handle';
import { parseAuthorization, signDateTime, verifySignature } from '../../src/rocketmq5/signature';
import { Code, codeName } from '../../src/rocketmq5/status';

// The protocol layer against an implementation nobody here wrote: the official Node client's
// google-protobuf classes (generated from Apache's own .proto files) and its signer.

test('golden bytes: Status{OK} is 08 a0 9c 01 12 02 "OK"', () => {
  const bytes = METHODS.Heartbeat.response.encode({ status: { code: Code.OK, message: 'OK' } });
  expect(Buffer.from(bytes).toString('hex')).toBe('0a08' + '08a09c01' + '12024f4b');
});

test('a SendMessageRequest we encode decodes with the official classes, field for field', () => {
  const bytes = METHODS.SendMessage.request.encode({
    messages: [
      {
        topic: { resourceNamespace: '', name: 'orders' },
        userProperties: { region: 'eu' },
        systemProperties: {
          tag: 'created',
          keys: ['k1', 'k2'],
          messageId: '01AABBCCDDEEFF00112233445566778899',
          messageType: MessageType.FIFO,
          messageGroup: 'g1',
          bornTimestamp: { seconds: 1_765_000_000, nanos: 5 },
          queueOffset: 2 ** 40,
          deliveryAttempt: 3,
        },
        body: Buffer.from('hello'),
      },
    ],
  });
  const decoded = officialService.SendMessageRequest.deserializeBinary(bytes);
  const m = decoded.getMessagesList()[0]!;
  const sys = m.getSystemProperties()!;
  expect(m.getTopic()!.getName()).toBe('orders');
  expect(m.getUserPropertiesMap().get('region')).toBe('eu');
  expect(sys.getTag()).toBe('created');
  expect(sys.getKeysList()).toEqual(['k1', 'k2']);
  expect(sys.getMessageId()).toBe('01AABBCCDDEEFF00112233445566778899');
  expect(sys.getMessageType()).toBe(MessageType.FIFO);
  expect(sys.getMessageGroup()).toBe('g1');
  expect(sys.getBornTimestamp()!.getSeconds()).toBe(1_765_000_000);
  expect(sys.getQueueOffset()).toBe(2 ** 40);
  expect(sys.getDeliveryAttempt()).toBe(3);
  expect(Buffer.from(m.getBody_asU8()).toString()).toBe('hello');
});

test('a ReceiveMessageRequest the official classes encode decodes here, presence included', () => {
  const request = new officialService.ReceiveMessageRequest();
  const { Resource, FilterExpression, MessageQueue } = jest.requireActual(
    'rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb',
  );
  const { Duration } = jest.requireActual('google-protobuf/google/protobuf/duration_pb');
  request.setGroup(new Resource().setName('billing'));
  request.setMessageQueue(new MessageQueue().setTopic(new Resource().setName('orders')).setId(-1));
  request.setFilterExpression(new FilterExpression().setType(2).setExpression('a > 1'));
  request.setBatchSize(32);
  request.setInvisibleDuration(new Duration().setSeconds(15).setNanos(500_000_000));
  request.setAutoRenew(true);
  const decoded = METHODS.ReceiveMessage.request.decode(request.serializeBinary());
  expect(decoded.group!.name).toBe('billing');
  expect(decoded.messageQueue!.topic!.name).toBe('orders');
  expect(decoded.messageQueue!.id).toBe(-1);
  expect(decoded.filterExpression).toMatchObject({ type: 2, expression: 'a > 1' });
  expect(decoded.batchSize).toBe(32);
  expect(toNumber(decoded.invisibleDuration!.seconds)).toBe(15);
  expect(decoded.invisibleDuration!.nanos).toBe(500_000_000);
  expect(decoded.autoRenew).toBe(true);
  // proto3 optional fields not set read as absent, not as a zero duration
  expect(decoded.longPollingTimeout ?? undefined).toBeUndefined();
});

test('signatures match the official client signer and verify only with the right secret and date', () => {
  const dateTime = '20261207T121314Z';
  expect(signDateTime('s3cret', dateTime)).toBe(officialSign('s3cret', dateTime));
  const header = `MQv2-HMAC-SHA1 Credential=app, SignedHeaders=x-mq-date-time, Signature=${officialSign('s3cret', dateTime)}`;
  const parsed = parseAuthorization(header)!;
  expect(parsed.accessKey).toBe('app');
  expect(verifySignature('s3cret', dateTime, parsed.signatureHex)).toBe(true);
  expect(verifySignature('s3cret', dateTime, parsed.signatureHex.toLowerCase())).toBe(true);
  expect(verifySignature('other', dateTime, parsed.signatureHex)).toBe(false);
  expect(verifySignature('s3cret', '20261207T121315Z', parsed.signatureHex)).toBe(false);
  expect(verifySignature('s3cret', dateTime, parsed.signatureHex.slice(2))).toBe(false);
  expect(parseAuthorization('Credential=app, Signature=00')).toBeUndefined();
  expect(parseAuthorization('MQv2-HMAC-SHA1 Credential=app, Signature=zz')).toBeUndefined();
  expect(parseAuthorization(`MQv2-HMAC-SHA1 Credential=app/scope, Signature=00`)!.accessKey).toBe('app');
});

test('receipt handles split at the last dot; ids in the v1 format', () => {
  const text = encodeGrpcReceiptHandle({ brokerHandle: 'AQEAAA-_x', storedId: 'C8FD0000' });
  expect(text).toBe('AQEAAA-_x.C8FD0000');
  expect(decodeGrpcReceiptHandle(text)).toEqual({ brokerHandle: 'AQEAAA-_x', storedId: 'C8FD0000' });
  for (const bad of ['', 'nodot', '.id', 'handle.']) expect(decodeGrpcReceiptHandle(bad)).toBeUndefined();
  const next = messageIdV1Generator('a1b2c3d4e5f6', 0x12345);
  const first = next(Date.UTC(2021, 0, 1, 0, 0, 10));
  expect(first).toBe('01A1B2C3D4E5F623450000000A00000001');
  expect(isMessageIdV1(first)).toBe(true);
  expect(isMessageIdV1(next(Date.UTC(2026, 0, 1)))).toBe(true);
  expect(isMessageIdV1('C8FD109BC459372A0000000000000000')).toBe(false);
  expect(codeName(Code.INVALID_RECEIPT_HANDLE)).toBe('INVALID_RECEIPT_HANDLE');
  expect(codeName(12345)).toBe('CODE_12345');
});
