import { FileStore } from '../../src/store/file-store';
import { MemoryFileSystem } from '../../src/store/file-system';
import { MemoryStore } from '../../src/store/memory-store';
import type { MessageStore } from '../../src/store/message-store';
import { tempDir } from '../support/temp-dir';
import { describeMessageStoreConformance } from './conformance';
import type { HarnessOptions, StoreHarness } from './conformance';

async function fileHarness(options: HarnessOptions, flushMode: 'sync' | 'async'): Promise<StoreHarness> {
  const t = tempDir();
  const storeOptions = { dir: t.dir, flushMode, retentionIntervalMs: 0, ...options };
  const harness: StoreHarness = {
    store: await FileStore.open(storeOptions),
    async reopen(): Promise<MessageStore> {
      await harness.store.close();
      harness.store = await FileStore.open(storeOptions);
      return harness.store;
    },
    cleanup: t.cleanup,
  };
  return harness;
}

describeMessageStoreConformance('FileStore, sync flush', (o) => fileHarness(o, 'sync'));
describeMessageStoreConformance('FileStore, async flush', (o) => fileHarness(o, 'async'));
describeMessageStoreConformance('MemoryStore', async (o) => ({
  store: await MemoryStore.create({ ...o, retentionIntervalMs: 0 }),
  cleanup: () => undefined,
}));
// The memory store's engine on its in-memory file system, reopened: what survives a close.
describeMessageStoreConformance('FileStore on MemoryFileSystem, reopened', async (o) => {
  const fileSystem = new MemoryFileSystem();
  const storeOptions = { dir: '/store', fileSystem, retentionIntervalMs: 0, ...o };
  const harness: StoreHarness = {
    store: await FileStore.open(storeOptions),
    async reopen(): Promise<MessageStore> {
      await harness.store.close();
      harness.store = await FileStore.open(storeOptions);
      return harness.store;
    },
    cleanup: () => undefined,
  };
  return harness;
});
