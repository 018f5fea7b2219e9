/**
 * A real small filesystem for full-disk tests (issue 13 points 8–9): a tmpfs of a few MiB mounted on a temporary
 * folder, filled with a filler file until the kernel answers ENOSPC. SQLite on it fails the way it does on a full
 * disk (SQLITE_FULL from write(2)), which `max_page_count` did not reproduce (free pages inside the database file
 * absorbed the writes). Mounting needs root (CAP_SYS_ADMIN); {@link smallDiskUnavailable} says why it cannot be
 * done here, so a test can skip with that reason.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, fstatSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  /** The mount point. */
  readonly dir: string;
  /** Bytes available to an unprivileged writer now. */
  freeBytes(): number;
  /** Fills the disk with the filler file until ENOSPC, then gives back about `leaveBytes` (rounded to 4 KiB). */
  fill(leaveBytes?: number): void;
  /** Removes the filler: the space it took is free again. */
  free(): void;
  /** Unmounts (lazily if something still holds a file open) and removes the mount point. */
  unmount(): void;
}

let probed: string | undefined | null = null;

/** Undefined when a tmpfs can be mounted here; else the reason it cannot (for `it.skipIf` / a skip message). */
export function smallDiskUnavailable(): string | undefined {
  if (probed !== null) return probed;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tessera-probe', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir], { stdio: 'pipe' });
    probed = undefined;
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    probed = `cannot mount a tmpfs here (mount -t tmpfs needs root / CAP_SYS_ADMIN; a loop device needs the same): ${stderr || (err as Error).message}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}

export function mountSmallDisk(sizeMiB: number): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-small-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tessera-small-disk', dir], { stdio: 'pipe' });
  const filler = join(dir, 'filler');
  const freeBytes = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const writeUntilFull = (fd: number, size: number) => {
    for (;;) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
        throw err;
      }
    }
  };
  return {
    dir,
    freeBytes,
    fill(leaveBytes = 0) {
      const fd = openSync(filler, 'a');
      try {
        writeUntilFull(fd, chunk.length);
        writeUntilFull(fd, 4096);
        if (leaveBytes > 0) {
          const size = fstatSync(fd).size;
          ftruncateSync(fd, Math.max(0, size - Math.ceil(leaveBytes / 4096) * 4096));
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
