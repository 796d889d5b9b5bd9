import { crc32 } from 'node:zlib';
import { readU64, writeU64 } from '../message/record-codec';
import type { StoreFileSystem } from './file-system';

/**
 * The checkpoint file: how far each part of the store was durable when it was last written
 * (RocketMQ's `StoreCheckpoint`). Replaced atomically; a file that fails its checksum counts as
 * absent, which makes recovery verify the whole commit log. Little-endian.
 *
 * | offset | size | field                  |                                                       |
 * |--------|------|------------------------|-------------------------------------------------------|
 * | 0      | 4    | magic                  | CHECKPOINT_MAGIC                                      |
 * | 4      | 4    | crc                    | CRC-32 of bytes [8, CHECKPOINT_BYTES)                 |
 * | 8      | 8    | commitLogFlushedOffset | commit log durable up to here                         |
 * | 16     | 8    | dispatchFlushedOffset  | consume-queue entries durable for records below this  |
 * | 24     | 8    | writtenAtMs            | when the checkpoint was taken                         |
 */
export const CHECKPOINT_MAGIC = 0x524e4331; // "RNC1"
export const CHECKPOINT_BYTES = 32;

export interface Checkpoint {
  commitLogFlushedOffset: number;
  dispatchFlushedOffset: number;
  writtenAtMs: number;
}

export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  const buf = Buffer.alloc(CHECKPOINT_BYTES);
  buf.writeUInt32LE(CHECKPOINT_MAGIC, 0);
  writeU64(buf, checkpoint.commitLogFlushedOffset, 8);
  writeU64(buf, checkpoint.dispatchFlushedOffset, 16);
  writeU64(buf, checkpoint.writtenAtMs, 24);
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4);
  return buf;
}

export function decodeCheckpoint(buf: Buffer | undefined): Checkpoint | undefined {
  if (!buf || buf.length !== CHECKPOINT_BYTES || buf.readUInt32LE(0) !== CHECKPOINT_MAGIC) return undefined;
  if (crc32(buf.subarray(8)) !== buf.readUInt32LE(4)) return undefined;
  return {
    commitLogFlushedOffset: readU64(buf, 8),
    dispatchFlushedOffset: readU64(buf, 16),
    writtenAtMs: readU64(buf, 24),
  };
}

export function readCheckpoint(fs: StoreFileSystem, file: string): Checkpoint | undefined {
  return decodeCheckpoint(fs.readFile(file));
}

export function writeCheckpoint(fs: StoreFileSystem, file: string, checkpoint: Checkpoint): void {
  fs.writeFileAtomic(file, encodeCheckpoint(checkpoint));
}

/** {@link writeCheckpoint} off the event loop when the file system can (`writeFileAtomicAsync`). */
export async function writeCheckpointAsync(
  fs: StoreFileSystem,
  file: string,
  checkpoint: Checkpoint,
): Promise<void> {
  if (fs.writeFileAtomicAsync) await fs.writeFileAtomicAsync(file, encodeCheckpoint(checkpoint));
  else writeCheckpoint(fs, file, checkpoint);
}
