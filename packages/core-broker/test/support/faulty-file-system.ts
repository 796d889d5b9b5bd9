import * as path from 'node:path';
import type { DiskUsage, StoreFile, StoreFileSystem } from '../../src/store/file-system';

export type FaultOperation = 'write' | 'datasync';

/** Matches the store's commit-log segment files (`<dir>/commitlog/<base offset>`). */
export const isCommitLogFile = (file: string): boolean => path.basename(path.dirname(file)) === 'commitlog';
/** Matches consume-queue files (`<dir>/consumequeue/<topic>/<queueId>/<first offset>`). */
export const isConsumeQueueFile = (file: string): boolean => file.split(path.sep).includes('consumequeue');
/** Matches key-index files (`<dir>/index/<first offset>`). */
export const isIndexFile = (file: string): boolean => path.basename(path.dirname(file)) === 'index';

/** An Error shaped like the one Node reports for an I/O failure. */
export function injectedError(operation: FaultOperation, code = 'EIO'): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: injected ${operation} failure`);
  error.code = code;
  return error;
}

/**
 * A held operation: it waits until the test releases it (the real operation runs), fails it, or —
 * for a write — tears it (the first `keepBytes` bytes are written, then it fails).
 */
export interface Gate {
  /** Resolves with the file's path once the operation has started and is waiting. */
  readonly reached: Promise<string>;
  release(): void;
  fail(error?: Error): void;
  /** Writes only the first `keepBytes(total)` bytes (default: half), then fails. Writes only. */
  tear(keepBytes?: (totalBytes: number) => number, error?: Error): void;
}

type Outcome =
  | { kind: 'release' }
  | { kind: 'fail'; error: Error }
  | { kind: 'tear'; keep: (total: number) => number; error: Error };

/** Chooses the operations a fault applies to: by file, and for writes by position in the file. */
export type FaultMatch = (file: string, position: number | undefined) => boolean;

interface Rule {
  operation: FaultOperation;
  match: FaultMatch;
  /** Operations still to hit; Infinity for a persistent fault. */
  remaining: number;
  decide(file: string): Promise<Outcome>;
}

const half = (total: number): number => Math.floor(total / 2);

/**
 * Wraps a {@link StoreFileSystem} and injects faults into chosen writes and fdatasyncs: fail the
 * next one, tear the next write, hold one until the test decides, or fail every one (a dead disk).
 * Everything else passes straight through to the wrapped file system.
 */
export class FaultyFileSystem implements StoreFileSystem {
  private rules: Rule[] = [];
  /** Operations that reached the inner file system, per kind. */
  readonly counts = { write: 0, datasync: 0 };

  constructor(readonly inner: StoreFileSystem) {}

  /** The next `operation` on a matching file fails with `error` (nothing is written or synced). */
  failNext(
    operation: FaultOperation,
    error: Error = injectedError(operation),
    match: FaultMatch = isCommitLogFile,
  ): void {
    this.add(operation, match, 1, () => Promise.resolve({ kind: 'fail', error }));
  }

  /** Every `operation` on a matching file fails from now on, until {@link heal}. */
  failAll(
    operation: FaultOperation,
    error: Error = injectedError(operation),
    match: FaultMatch = isCommitLogFile,
  ): void {
    this.add(operation, match, Infinity, () => Promise.resolve({ kind: 'fail', error }));
  }

  /** The next write to a matching file writes only `keepBytes(total)` bytes (default half), then fails. */
  tearNextWrite(
    keepBytes: (totalBytes: number) => number = half,
    error: Error = injectedError('write'),
    match: FaultMatch = isCommitLogFile,
  ): void {
    this.add('write', match, 1, () => Promise.resolve({ kind: 'tear', keep: keepBytes, error }));
  }

  /** The next `operation` on a matching file waits on the returned gate. */
  holdNext(operation: FaultOperation, match: FaultMatch = isCommitLogFile): Gate {
    let reachedResolve!: (file: string) => void;
    let decide!: (outcome: Outcome) => void;
    const reached = new Promise<string>((r) => (reachedResolve = r));
    const decision = new Promise<Outcome>((r) => (decide = r));
    this.add(operation, match, 1, (file) => {
      reachedResolve(file);
      return decision;
    });
    return {
      reached,
      release: () => decide({ kind: 'release' }),
      fail: (error = injectedError(operation)) => decide({ kind: 'fail', error }),
      tear: (keep = half, error = injectedError('write')) => decide({ kind: 'tear', keep, error }),
    };
  }

  /** Removes every pending and persistent fault. */
  heal(): void {
    this.rules = [];
  }

  private add(operation: FaultOperation, match: FaultMatch, remaining: number, decide: Rule['decide']): void {
    this.rules.push({ operation, match, remaining, decide });
  }

  /** The outcome for one operation: the first rule that matches it, consumed. */
  outcome(operation: FaultOperation, file: string, position?: number): Promise<Outcome> | undefined {
    const rule = this.rules.find((r) => r.operation === operation && r.match(file, position));
    if (!rule) return undefined;
    if (--rule.remaining <= 0) this.rules.splice(this.rules.indexOf(rule), 1);
    return rule.decide(file);
  }

  mkdirp(dir: string): void {
    this.inner.mkdirp(dir);
  }
  list(dir: string): string[] {
    return this.inner.list(dir);
  }
  exists(file: string): boolean {
    return this.inner.exists(file);
  }
  open(file: string): StoreFile {
    return new FaultyFile(this.inner.open(file), this);
  }
  readFile(file: string): Buffer | undefined {
    return this.inner.readFile(file);
  }
  writeFileAtomic(file: string, data: Buffer): void {
    this.inner.writeFileAtomic(file, data);
  }
  remove(file: string): void {
    this.inner.remove(file);
  }
  removeDirIfEmpty(dir: string): void {
    this.inner.removeDirIfEmpty(dir);
  }
  diskUsage(dir: string): DiskUsage {
    return this.inner.diskUsage(dir);
  }
  lock(file: string): () => void {
    return this.inner.lock?.(file) ?? ((): void => undefined);
  }
}

class FaultyFile implements StoreFile {
  constructor(
    private readonly inner: StoreFile,
    private readonly fs: FaultyFileSystem,
  ) {}
  get path(): string {
    return this.inner.path;
  }
  size(): number {
    return this.inner.size();
  }
  read(target: Buffer, targetOffset: number, length: number, position: number): number {
    return this.inner.read(target, targetOffset, length, position);
  }
  async write(buffers: readonly Buffer[], position: number): Promise<void> {
    const pending = this.fs.outcome('write', this.inner.path, position);
    const outcome = pending ? await pending : ({ kind: 'release' } as const);
    if (outcome.kind === 'fail') throw outcome.error;
    this.fs.counts.write++;
    if (outcome.kind === 'tear') {
      const all = Buffer.concat(buffers);
      const keep = Math.max(0, Math.min(all.length, outcome.keep(all.length)));
      if (keep > 0) await this.inner.write([all.subarray(0, keep)], position);
      throw outcome.error;
    }
    await this.inner.write(buffers, position);
  }
  async datasync(): Promise<void> {
    const pending = this.fs.outcome('datasync', this.inner.path);
    const outcome = pending ? await pending : ({ kind: 'release' } as const);
    if (outcome.kind !== 'release') throw outcome.error;
    this.fs.counts.datasync++;
    await this.inner.datasync();
  }
  truncate(length: number): void {
    this.inner.truncate(length);
  }
  close(): void {
    this.inner.close();
  }
}
