import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** Mounts a tmpfs of `bytes` on a new directory (a real full disk); `undefined` when this process may not mount. */
export function mountTmpfs(bytes: number): { dir: string; unmount(): void } | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'rocketnest-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmdirSync(dir);
    return undefined;
  }
  return {
    dir,
    unmount() {
      execFileSync('umount', [dir], { stdio: 'ignore' });
      rmdirSync(dir);
    },
  };
}

/** Whether mounting works here, found out by mounting and unmounting a probe. */
export function canMountTmpfs(): boolean {
  const probe = mountTmpfs(64 * 1024);
  probe?.unmount();
  return probe !== undefined;
}
