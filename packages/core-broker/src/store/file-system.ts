import * as fs from 'node:fs';
import * as path from 'node:path';
import { RocketError } from '../common/errors';

/** One open file of the store. Reads are synchronous positional reads; writes and syncs are not. */
export interface StoreFile {
  readonly path: string;
  /** Current length in bytes. */
  size(): number;
  /** Reads up to `length` bytes at `position` into `target[targetOffset…]`; returns bytes read. */
  read(target: Buffer, targetOffset: number, length: number, position: number): number;
  /**
   * Writes all `buffers` back to back at `position`. The file keeps no reference to them: once the
   * write settles (or `writeSync` returns) the caller may fill them again (the commit log reuses its
   * arenas).
   */
  write(buffers: readonly Buffer[], position: number): Promise<void>;
  /**
   * Optional: the same write, done before returning (a copy into the OS page cache, as RocketMQ's
   * append into its mapped file). The commit log prefers it when present: it saves a round trip
   * through the I/O thread pool per drain. Throws what `write` would reject with.
   */
  writeSync?(buffers: readonly Buffer[], position: number): void;
  /** Makes written data durable (fdatasync). */
  datasync(): Promise<void>;
  truncate(length: number): void;
  close(): void;
}

export interface DiskUsage {
  totalBytes: number;
  freeBytes: number;
}

/**
 * Everything the store does to the file system. Core code never imports `node:fs`: it gets this
 * interface, so tests inject faults (a failing write, a failing fsync, a full disk) and the memory
 * store keeps its files in memory.
 */
export interface StoreFileSystem {
  mkdirp(dir: string): void;
  /** Names (not paths) in `dir`, or `[]` when it does not exist. */
  list(dir: string): string[];
  exists(file: string): boolean;
  /** Opens `file` for reading and writing, creating it when absent. */
  open(file: string): StoreFile;
  /** Whole-file read, or `undefined` when it does not exist. */
  readFile(file: string): Buffer | undefined;
  /** Replaces `file` atomically and durably (write to a temporary name, fsync, rename, fsync dir). */
  writeFileAtomic(file: string, data: Buffer): void;
  /**
   * Optional: the same, its writes and fsyncs off the event loop. The store's periodic checkpoint
   * prefers it when present, so a slow fsync does not hold every request up. Calls for one file
   * must not overlap (they share the temporary name).
   */
  writeFileAtomicAsync?(file: string, data: Buffer): Promise<void>;
  remove(file: string): void;
  /** Removes an empty directory; no-op when not empty or absent. */
  removeDirIfEmpty(dir: string): void;
  diskUsage(dir: string): DiskUsage;
  /**
   * Takes the store directory's lock file for this process; returns its release. Throws
   * `STORE_LOCKED` when a live process holds it (a file left by a dead one is taken over).
   * Optional: an in-memory file system belongs to one process and needs none.
   */
  lock?(file: string): () => void;
}

/**
 * The buffers still to write after `written` bytes of `buffers` went out, or `undefined` when all
 * did. A short write is not an error by itself: the kernel writes what fits, and the next call
 * reports why the rest does not (ENOSPC on a full disk), with its errno.
 */
function remainder(buffers: Buffer[], written: number): Buffer[] | undefined {
  let skip = written;
  for (let i = 0; i < buffers.length; i++) {
    const b = buffers[i]!;
    if (skip < b.length) return [b.subarray(skip), ...buffers.slice(i + 1)];
    skip -= b.length;
  }
  return undefined;
}

function shortWrite(rest: Buffer[]): Error {
  const bytes = rest.reduce((sum, b) => sum + b.length, 0);
  return new Error(`short write: 0 of ${bytes} bytes written`);
}

class NodeFile implements StoreFile {
  private fd: number;
  constructor(readonly path: string) {
    this.fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  }
  size(): number {
    return fs.fstatSync(this.fd).size;
  }
  read(target: Buffer, targetOffset: number, length: number, position: number): number {
    return fs.readSync(this.fd, target, targetOffset, length, position);
  }
  write(buffers: readonly Buffer[], position: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const step = (rest: Buffer[], at: number): void => {
        fs.writev(this.fd, rest, at, (err, written) => {
          if (err) return reject(err);
          const left = remainder(rest, written);
          if (left === undefined) resolve();
          else if (written === 0) reject(shortWrite(rest));
          else step(left, at + written);
        });
      };
      step(buffers as Buffer[], position);
    });
  }
  writeSync(buffers: readonly Buffer[], position: number): void {
    let rest = buffers as Buffer[];
    let at = position;
    for (;;) {
      const written = fs.writevSync(this.fd, rest, at);
      const left = remainder(rest, written);
      if (left === undefined) return;
      if (written === 0) throw shortWrite(rest);
      rest = left;
      at += written;
    }
  }
  datasync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }
  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** The real file system. */
export const nodeFileSystem: StoreFileSystem = {
  mkdirp: (dir) => void fs.mkdirSync(dir, { recursive: true }),
  list: (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []),
  exists: (file) => fs.existsSync(file),
  open: (file) => new NodeFile(file),
  readFile: (file) => (fs.existsSync(file) ? fs.readFileSync(file) : undefined),
  writeFileAtomic(file, data) {
    const tmp = `${file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, data, 0, data.length, 0);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    const dirFd = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  },
  async writeFileAtomicAsync(file, data) {
    const tmp = `${file}.tmp`;
    const handle = await fs.promises.open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
    const dir = await fs.promises.open(path.dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  },
  remove: (file) => fs.rmSync(file, { force: true }),
  removeDirIfEmpty(dir) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // not empty or already gone: both fine
    }
  },
  diskUsage(dir) {
    const s = fs.statfsSync(dir);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  },
  lock(file) {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw lockError(file, error);
        const holder = Number(fs.readFileSync(file, 'utf8').trim());
        if (Number.isSafeInteger(holder) && holder > 0 && isAlive(holder)) {
          throw new RocketError(
            'STORE_LOCKED',
            `${path.dirname(file)} is in use by process ${holder} (lock file ${file}); stop it first, ` +
              'or remove the lock file if no process uses the directory',
          );
        }
        // left by a process that died without closing (kill -9): take it over
        fs.rmSync(file, { force: true });
      }
    }
    return () => fs.rmSync(file, { force: true });
  },
};

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, but belongs to another user
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockError(file: string, cause: unknown): RocketError {
  return new RocketError('STORE_IO_ERROR', `cannot take the lock file ${file}: ${(cause as Error).message}`, {
    cause,
    retriable: false,
  });
}

/** Storage unit of a memory file: files grow a page at a time, never by copying what they hold. */
const MEMORY_PAGE_BYTES = 1024 * 1024;

class MemoryFile implements StoreFile {
  /** Zero-filled pages of {@link MEMORY_PAGE_BYTES} (the first may be smaller while it is the only one); byte `i` is `pages[i / PAGE][i % PAGE]`. */
  private pages: Buffer[] = [];
  length = 0;
  constructor(readonly path: string) {}
  size(): number {
    return this.length;
  }
  read(target: Buffer, targetOffset: number, length: number, position: number): number {
    const n = Math.max(0, Math.min(length, this.length - position));
    let done = 0;
    while (done < n) {
      const at = position + done;
      const page = this.pages[Math.floor(at / MEMORY_PAGE_BYTES)]!;
      const from = at % MEMORY_PAGE_BYTES;
      done += page.copy(target, targetOffset + done, from, Math.min(MEMORY_PAGE_BYTES, from + n - done));
    }
    return n;
  }
  write(buffers: readonly Buffer[], position: number): Promise<void> {
    this.writeSync(buffers, position);
    return Promise.resolve();
  }
  /** A copy into the pages, as a write into the page cache: the commit log skips an await per drain. */
  writeSync(buffers: readonly Buffer[], position: number): void {
    let at = position;
    for (const b of buffers) {
      this.ensure(at + b.length);
      let done = 0;
      while (done < b.length) {
        const page = this.pages[Math.floor((at + done) / MEMORY_PAGE_BYTES)]!;
        done += b.copy(page, (at + done) % MEMORY_PAGE_BYTES, done);
      }
      at += b.length;
      this.length = Math.max(this.length, at);
    }
  }
  /** The whole content, copied. */
  contents(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.read(out, 0, this.length, 0);
    return out;
  }
  datasync(): Promise<void> {
    return Promise.resolve();
  }
  truncate(length: number): void {
    if (length < this.length) {
      // pages past the new end go; the rest of the last one is zeroed, as a file reads after truncate
      this.pages.length = Math.ceil(length / MEMORY_PAGE_BYTES);
      if (length % MEMORY_PAGE_BYTES !== 0)
        this.pages[this.pages.length - 1]!.fill(0, length % MEMORY_PAGE_BYTES);
    }
    this.ensure(length);
    this.length = length;
  }
  close(): void {}
  private ensure(capacity: number): void {
    // a small file (checkpoint, queue table, a young consume queue) has one page that doubles up
    // to the full page size; past it the file grows by whole pages
    const first = this.pages[0];
    if (this.pages.length <= 1 && (first?.length ?? 0) < Math.min(capacity, MEMORY_PAGE_BYTES)) {
      const grown = Buffer.alloc(
        Math.min(MEMORY_PAGE_BYTES, Math.max(capacity, (first?.length ?? 0) * 2, 4096)),
      );
      first?.copy(grown, 0, 0, this.length);
      this.pages[0] = grown;
    }
    while (this.pages.length * MEMORY_PAGE_BYTES < capacity) this.pages.push(Buffer.alloc(MEMORY_PAGE_BYTES));
  }
}

/**
 * A file system held in memory: the memory store's storage, and a fast base for fault-injection
 * tests. Files survive `close()` and reopening within one instance, like a disk that never crashes.
 */
export class MemoryFileSystem implements StoreFileSystem {
  private readonly files = new Map<string, MemoryFile>();
  private readonly dirs = new Set<string>();
  /** Reported by {@link diskUsage}: total space, and bytes used by things other than the store. */
  totalBytes = Number.MAX_SAFE_INTEGER;
  otherUsedBytes = 0;

  mkdirp(dir: string): void {
    for (let d = path.normalize(dir); !this.dirs.has(d) && d !== path.dirname(d); d = path.dirname(d))
      this.dirs.add(d);
  }
  list(dir: string): string[] {
    const prefix = path.normalize(dir) + path.sep;
    const names = new Set<string>();
    for (const p of [...this.files.keys(), ...this.dirs]) {
      if (p.startsWith(prefix)) names.add(p.slice(prefix.length).split(path.sep)[0]!);
    }
    return [...names];
  }
  exists(file: string): boolean {
    const p = path.normalize(file);
    return this.files.has(p) || this.dirs.has(p);
  }
  open(file: string): StoreFile {
    const p = path.normalize(file);
    let f = this.files.get(p);
    if (!f) {
      f = new MemoryFile(p);
      this.files.set(p, f);
    }
    return f;
  }
  readFile(file: string): Buffer | undefined {
    const f = this.files.get(path.normalize(file));
    return f?.contents();
  }
  writeFileAtomic(file: string, data: Buffer): void {
    const f = new MemoryFile(path.normalize(file));
    f.writeSync([data], 0);
    this.files.set(f.path, f);
  }
  remove(file: string): void {
    this.files.delete(path.normalize(file));
  }
  removeDirIfEmpty(dir: string): void {
    if (this.list(dir).length === 0) this.dirs.delete(path.normalize(dir));
  }
  diskUsage(): DiskUsage {
    let used = this.otherUsedBytes;
    for (const f of this.files.values()) used += f.length;
    return { totalBytes: this.totalBytes, freeBytes: Math.max(0, this.totalBytes - used) };
  }
}
