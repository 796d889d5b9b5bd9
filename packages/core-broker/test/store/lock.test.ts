import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FileStore } from '../../src/store/file-store';
import { tempDir } from '../support/temp-dir';

describe('the data directory lock', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  test('a second open of a directory in use is STORE_LOCKED naming the holder; after close it opens again', async () => {
    const dir = path.join(t.dir, 'one');
    const first = await FileStore.open({ dir });
    expect(readFileSync(path.join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
    const second = await FileStore.open({ dir }).catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'STORE_LOCKED', retriable: false });
    expect((second as Error).message).toContain(`in use by process ${process.pid}`);
    await first.close();
    expect(existsSync(path.join(dir, 'lock'))).toBe(false);
    const again = await FileStore.open({ dir });
    await again.close();
  });

  test('a lock file left by a process that died is taken over', async () => {
    const dir = path.join(t.dir, 'two');
    await (await FileStore.open({ dir })).close();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(dead.stdout.toString());
    expect(deadPid).toBeGreaterThan(0);
    writeFileSync(path.join(dir, 'lock'), `${deadPid}\n`);
    const store = await FileStore.open({ dir });
    expect(readFileSync(path.join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
    await store.close();
  });

  test('a store that fails to open gives its lock back', async () => {
    const dir = path.join(t.dir, 'three');
    await (await FileStore.open({ dir })).close();
    writeFileSync(path.join(dir, 'store-id'), 'not an id');
    await expect(FileStore.open({ dir })).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
    expect(existsSync(path.join(dir, 'lock'))).toBe(false);
  });
});
