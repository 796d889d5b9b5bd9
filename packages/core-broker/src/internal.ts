// Entry for sibling packages (testing, benchmarks) that need more than the public API.
// Not part of the public contract; may change without notice.
export { MemoryFileSystem, nodeFileSystem } from './store/file-system';
export type { StoreFileSystem, StoreFile, DiskUsage } from './store/file-system';
export { resolveStoreOptions } from './store/store-options';
export { intOption } from './common/options';
