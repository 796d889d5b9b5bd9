import * as path from 'node:path';
import { MemoryFileSystem } from '../../src/store/file-system';
import { ConsumeQueue, ENTRY_BYTES, decodeEntry, encodeEntry } from '../../src/store/consume-queue';

const entryFor = (n: number) => ({ commitLogOffset: 1000 + n * 100, size: 100, tagCode: n % 7 });

async function filled(count: number, perFile = 16) {
  const fs = new MemoryFileSystem();
  const dir = '/s/consumequeue/t/0';
  const cq = new ConsumeQueue('t', 0, dir, perFile, fs);
  for (let i = 0; i < count; i++) cq.append(i, entryFor(i));
  return { fs, dir, cq };
}

describe('consume queue', () => {
  test('entry layout: 20 bytes, golden', () => {
    const buf = Buffer.alloc(ENTRY_BYTES);
    encodeEntry(buf, 0, { commitLogOffset: 2 ** 33 + 5, size: 1234, tagCode: 0xfeedbeef });
    expect(buf.toString('hex')).toBe('0500000002000000d2040000efbeedfe00000000');
    expect(decodeEntry(buf, 0)).toEqual({ commitLogOffset: 2 ** 33 + 5, size: 1234, tagCode: 0xfeedbeef });
  });

  test('entries land in files of entriesPerFile, named by their first queue offset', async () => {
    const { fs, dir, cq } = await filled(40);
    await cq.flush();
    expect(fs.list(dir).sort()).toEqual([
      '00000000000000000000',
      '00000000000000000016',
      '00000000000000000032',
    ]);
    expect(fs.readFile(path.join(dir, '00000000000000000016'))!.length).toBe(16 * ENTRY_BYTES);
    expect(fs.readFile(path.join(dir, '00000000000000000032'))!.length).toBe(8 * ENTRY_BYTES);
  });

  test('reads stop at a file boundary and span flushed and unflushed entries', async () => {
    const { cq } = await filled(20);
    await cq.flush();
    for (let i = 20; i < 30; i++) cq.append(i, entryFor(i));
    const first = cq.readEntries(10, 100);
    expect(first.count).toBe(6); // 10..15, then the file ends
    expect(decodeEntry(first.buf, 5 * ENTRY_BYTES)).toEqual(entryFor(15));
    const second = cq.readEntries(16, 100);
    expect(second.count).toBe(4); // 16..19 on disk
    const tail = cq.readEntries(20, 100);
    expect(tail.count).toBe(10); // in memory
    expect(decodeEntry(tail.buf, 9 * ENTRY_BYTES)).toEqual(entryFor(29));
    expect(cq.entry(30)).toBeUndefined();
    expect(cq.entry(-1)).toBeUndefined();
  });

  test('reload finds max offset and drops a torn trailing entry', async () => {
    const { fs, dir, cq } = await filled(20);
    await cq.flush();
    const last = fs.open(path.join(dir, '00000000000000000016'));
    await last.write([Buffer.alloc(7, 1)], 4 * ENTRY_BYTES); // a torn 21st entry
    const again = new ConsumeQueue('t', 0, dir, 16, fs);
    again.load();
    expect(again.maxOffset).toBe(20);
    expect(again.minOffset).toBe(0);
    expect(again.entry(19)).toEqual(entryFor(19));
  });

  test('binary search by commit-log offset, and dropBelow moves the min and deletes whole files but never the last', async () => {
    const { fs, dir, cq } = await filled(40);
    await cq.flush();
    expect(cq.firstOffsetAtOrAfter(0)).toBe(0);
    expect(cq.firstOffsetAtOrAfter(1000 + 17 * 100)).toBe(17);
    expect(cq.firstOffsetAtOrAfter(1000 + 17 * 100 + 1)).toBe(18);
    expect(cq.firstOffsetAtOrAfter(10 ** 9)).toBe(40);
    cq.dropBelow(1000 + 20 * 100);
    expect(cq.minOffset).toBe(20);
    expect(fs.list(dir).sort()).toEqual(['00000000000000000016', '00000000000000000032']);
    expect(cq.readEntries(19, 1).count).toBe(0);
    cq.dropBelow(10 ** 9);
    expect(cq.minOffset).toBe(40);
    expect(cq.maxOffset).toBe(40);
    expect(fs.list(dir)).toEqual(['00000000000000000032']);
  });

  test('truncateFrom cuts entries and files after an offset', async () => {
    const { fs, dir, cq } = await filled(40);
    await cq.flush();
    cq.truncateFrom(18);
    expect(cq.maxOffset).toBe(18);
    expect(fs.list(dir).sort()).toEqual(['00000000000000000000', '00000000000000000016']);
    expect(cq.entry(17)).toEqual(entryFor(17));
    cq.append(18, entryFor(99));
    expect(cq.entry(18)).toEqual(entryFor(99));
  });

  test('appending out of order is an invariant violation', async () => {
    const { cq } = await filled(3);
    expect(() => cq.append(5, entryFor(5))).toThrow(/entry 5 after 3/);
  });
});
