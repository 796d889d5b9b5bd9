/**
 * The two forms of a pull response over TCP (consume-codec.ts): a client that sets the
 * acceptsRecords bit (this one's TcpTransport) gets the stored records as they are; a client that
 * does not (an older one) gets the MessageView form as before. Both see the same messages, ids
 * included, and broker-side filters apply to both.
 */
import { PULL_STATUSES, pullRequestCodec, pullResponseCodec } from '../../src/remoting/consume-codec';
import { TcpTransport } from '../../src/client/tcp-transport';
import { protocolError } from '../../src/remoting/binary';
import { RemotingClient } from '../../src/remoting/remoting-client';
import { RemotingServer } from '../../src/remoting/remoting-server';
import { RequestCode } from '../../src/remoting/request-codes';
import type { PullRequest } from '../../src/message/protocol';
import { startTcpCluster, type TcpCluster } from './tcp-harness';

const request: PullRequest = {
  consumerGroup: 'G',
  topic: 'T',
  queueId: 0,
  queueOffset: 0,
  maxCount: 32,
  suspendTimeoutMs: 0,
};

describe('pull responses over TCP: records form for new clients, views form for old ones', () => {
  let t: TcpCluster;
  let old: RemotingClient;
  beforeAll(async () => {
    t = await startTcpCluster({ topics: [{ topic: 'T', queueCount: 1 }] });
    old = new RemotingClient({ requestTimeoutMs: 5_000 });
    const broker = t.cluster.broker('broker-a');
    for (let i = 0; i < 6; i++) {
      await broker.send({
        producerGroup: 'P',
        topic: 'T',
        queueId: 0,
        bornTimestampMs: 1,
        messages: [
          {
            topic: 'T',
            body: Buffer.from(`m${i}`),
            tag: i % 2 === 0 ? 'even' : 'odd',
            keys: [`k${i}`],
            properties: { n: String(i) },
          },
        ],
      });
    }
  });
  afterAll(async () => {
    await old.close();
    await t.close();
  });

  /** What an older client does: the request without the bit, the response read by its status byte. */
  async function oldPull(extra: Partial<PullRequest> = {}) {
    const payload = await old.request(
      t.address('broker-a'),
      RequestCode.PULL_MESSAGE,
      pullRequestCodec.encode({ ...request, ...extra }),
    );
    return { statusByte: payload.header[0]!, response: pullResponseCodec.decode(payload) };
  }

  test('an old client gets the views form; the new transport the records form; the same messages', async () => {
    const before = await oldPull();
    expect(before.statusByte).toBe(PULL_STATUSES.indexOf('FOUND')); // no 0x80: the views form
    const viaTransport = await t.transport.pull('broker-a', request);
    expect(viaTransport.messages).toHaveLength(6);
    expect(viaTransport).toEqual(before.response);
    expect(viaTransport.messages.map((m) => m.msgId)).toEqual(
      t.cluster
        .broker('broker-a')
        .store.getMessages('T', 0, 0, { maxCount: 32 })
        .messages.map((m) => m.msgId),
    );
  });

  test('the new form is what a client with the bit gets, byte for byte the stored records', async () => {
    const payload = await old.request(
      t.address('broker-a'),
      RequestCode.PULL_MESSAGE,
      pullRequestCodec.encode({ ...request, acceptsRecords: true }),
    );
    expect(payload.header[0]! & 0x80).toBe(0x80);
    const stored = t.cluster.broker('broker-a').store.getRecords!('T', 0, 0, { maxCount: 32 }).records;
    expect(Buffer.concat(stored).length).toBeGreaterThan(0);
    expect(payload.body.includes(Buffer.concat(stored))).toBe(false); // each record has its u32 length
    for (const record of stored) expect(payload.body.includes(record)).toBe(true);
  });

  test.each([
    ['TAG', 'even'],
    ['SQL92', 'n > 2'],
  ] as const)('a %s filter selects the same messages in both forms', async (kind, expression) => {
    const subscription = { topic: 'T', kind, expression };
    const viaOld = (await oldPull({ subscription })).response;
    const viaNew = await t.transport.pull('broker-a', { ...request, subscription });
    expect(viaNew).toEqual(viaOld);
    expect(viaNew.messages.length).toBeGreaterThan(0);
    expect(viaNew.messages.length).toBeLessThan(6);
  });
});

describe('a new client and a broker from before the records form', () => {
  test('the pull refused for its unknown bit is asked again in the views form, and stays so', async () => {
    const t = await startTcpCluster({ topics: [{ topic: 'T', queueCount: 1 }] });
    const upstream = new RemotingClient({ requestTimeoutMs: 5_000 });
    const pulls: string[] = [];
    // An older broker in front of a current one: it forwards every request, and refuses a pull with
    // the records bit exactly as the older pullRequest decoder did (a PROTOCOL_ERROR naming the bit).
    const older = await RemotingServer.listen({
      host: '127.0.0.1',
      port: 0,
      handler: async (code, header, body) => {
        if (code === RequestCode.PULL_MESSAGE) {
          const asked = pullRequestCodec.decode({ header, body });
          pulls.push(asked.acceptsRecords === true ? 'records' : 'views');
          if (asked.acceptsRecords === true) throw protocolError('pullRequest: unknown presence bits 0x4');
        }
        return upstream.request(t.address('broker-a'), code, { header, body });
      },
    });
    const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${older.address().port}` } });
    try {
      await t.transport.send('broker-a', {
        producerGroup: 'P',
        topic: 'T',
        queueId: 0,
        bornTimestampMs: 1,
        messages: [{ topic: 'T', body: Buffer.from('hello') }],
      });
      const first = await transport.pull('broker-a', request);
      const second = await transport.pull('broker-a', { ...request, queueOffset: 1 });
      expect(first.status).toBe('FOUND');
      expect(first.messages.map((m) => m.body.toString())).toEqual(['hello']);
      expect(second.status).toBe('NO_NEW_MESSAGE');
      // one refusal, then the views form for this broker from then on
      expect(pulls).toEqual(['records', 'views', 'views']);
    } finally {
      await transport.close();
      older.close();
      await upstream.close();
      await t.close();
    }
  });

  test('any other PROTOCOL_ERROR of a pull is not retried', async () => {
    const t = await startTcpCluster({ topics: [{ topic: 'T', queueCount: 1 }] });
    const upstream = new RemotingClient({ requestTimeoutMs: 5_000 });
    let pulls = 0;
    const broken = await RemotingServer.listen({
      host: '127.0.0.1',
      port: 0,
      handler: async (code, header, body) => {
        if (code === RequestCode.PULL_MESSAGE) {
          pulls++;
          throw protocolError('pullRequest: queueId is out of range');
        }
        return upstream.request(t.address('broker-a'), code, { header, body });
      },
    });
    const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${broken.address().port}` } });
    try {
      await expect(transport.pull('broker-a', request)).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
      expect(pulls).toBe(1);
    } finally {
      await transport.close();
      broken.close();
      await upstream.close();
      await t.close();
    }
  });
});
