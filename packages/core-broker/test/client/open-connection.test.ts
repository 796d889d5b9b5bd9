import { Broker } from '../../src/broker/broker';
import { InProcessTransport } from '../../src/client/in-process-transport';
import { TcpTransport } from '../../src/client/tcp-transport';
import { systemClock } from '../../src/common/clock';
import { openConnection } from '../../src/connection/open-connection';
import { MemoryStore } from '../../src/store/memory-store';
import { ManualClock } from '../support/manual-clock';

// openConnection: the connection opening that nest-transport's RocketConnection wraps.

test('exactly one way to connect: none, or two, is INVALID_OPTION naming what was given', async () => {
  await expect(openConnection({})).rejects.toMatchObject({
    code: 'INVALID_OPTION',
    message: expect.stringContaining('got none'),
  });
  await expect(
    openConnection({ brokers: { 'broker-a': '127.0.0.1:1' }, embedded: {} }),
  ).rejects.toMatchObject({
    code: 'INVALID_OPTION',
    message: expect.stringContaining('got brokers, embedded'),
  });
});

test('a transport handed in is used and left open; the clock defaults to the system clock', async () => {
  const store = await MemoryStore.create({ retentionIntervalMs: 0 });
  const broker = await Broker.start({ store });
  const transport = new InProcessTransport(broker);
  const closeSpy = jest.spyOn(broker, 'close');
  const connection = await openConnection({ transport });
  expect(connection.transport).toBe(transport);
  expect(connection.broker).toBeUndefined();
  expect(connection.clock).toBe(systemClock);
  await connection.close();
  expect(closeSpy).not.toHaveBeenCalled();
  await broker.close();
  await store.close();
});

test('embedded: a broker on a memory store with its topics and the given clock, closed with the connection', async () => {
  const clock = new ManualClock();
  const connection = await openConnection({
    embedded: { topics: ['Orders', { topic: 'Fifo', queueCount: 2, fifo: true }] },
    clock,
  });
  const broker = connection.broker!;
  expect(connection.transport).toBeInstanceOf(InProcessTransport);
  expect(connection.clock).toBe(clock);
  expect(broker.getTopic('Orders')).toBeDefined();
  expect(broker.getTopic('Fifo')).toMatchObject({ fifo: true });
  const closeSpy = jest.spyOn(broker, 'close');
  await Promise.all([connection.close(), connection.close()]);
  expect(closeSpy).toHaveBeenCalledTimes(1);
});

test('brokers by address: a TcpTransport the connection owns and closes', async () => {
  const connection = await openConnection({ brokers: { 'broker-a': '127.0.0.1:1' } });
  expect(connection.transport).toBeInstanceOf(TcpTransport);
  const closeSpy = jest.spyOn(connection.transport as TcpTransport, 'close');
  await connection.close();
  expect(closeSpy).toHaveBeenCalledTimes(1);
});
