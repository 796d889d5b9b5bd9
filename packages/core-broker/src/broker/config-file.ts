import * as path from 'node:path';
import { RocketError } from '../common/errors';
import type { StoreFileSystem } from '../store/file-system';

/**
 * A small JSON document the broker keeps beside the store: topic configs, consumer offsets, timer
 * progress (RocketMQ's `config/*.json`). Not on any hot path; replaced atomically on every save.
 */
export class ConfigFile<T> {
  private readonly file: string;

  constructor(
    private readonly fs: StoreFileSystem,
    dir: string,
    name: string,
  ) {
    fs.mkdirp(dir);
    this.file = path.join(dir, name);
  }

  load(): T | undefined {
    const bytes = this.fs.readFile(this.file);
    if (bytes === undefined) return undefined;
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (cause) {
      throw new RocketError('STORE_CORRUPT', `${this.file} is not valid JSON; fix or remove it`, { cause });
    }
  }

  save(value: T): void {
    this.fs.writeFileAtomic(this.file, Buffer.from(JSON.stringify(value, null, 1)));
  }
}
