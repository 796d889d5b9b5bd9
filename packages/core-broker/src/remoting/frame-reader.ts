import type { Frame, FrameDecoder } from './frame-codec';

/** Bytes of each scratch buffer that small frames are read into. */
export const READ_SCRATCH_BYTES = 64 * 1024;
/**
 * Most bytes one read into scratch takes. A frame that turns out to be larger is finished in a
 * buffer of its own, so at most this much of it is copied.
 */
export const READ_WINDOW_BYTES = 16 * 1024;
/** A scratch buffer with less room than this left is replaced by a fresh one. */
const MIN_READ_BYTES = 2 * 1024;

/**
 * Reads a socket's frames with as few copies as the stream allows, for `net.connect`'s `onread`
 * option (`{ buffer: () => reader.nextBuffer(), callback: (n) => reader.read(n) }`): small frames
 * are read into a scratch buffer, back to back, and handed out as views of it; a frame of
 * {@link READ_WINDOW_BYTES} or more (a pull response of many messages) gets a buffer of exactly
 * its size, the bytes already read are copied there once, and the rest of it is read straight
 * into it. With socket `'data'` events every chunk is a fresh buffer, and a frame spanning chunks
 * is copied whole to join them: for 1 KiB messages that copy was a sixth of a consumer's time.
 * Frames are checked by the {@link FrameDecoder} as before (size limit, magic, flags).
 */
export class FrameReader {
  private scratch = Buffer.allocUnsafe(READ_SCRATCH_BYTES);
  /** Bytes of `scratch` already read into (handed out as views; never written again). */
  private used = 0;
  /** The large frame being read into its own buffer, and how much of it is in. */
  private frame: Buffer | undefined;
  private filled = 0;

  constructor(
    private readonly decoder: FrameDecoder,
    private readonly onFrames: (frames: Frame[]) => void,
  ) {}

  /** Where the next read goes. */
  nextBuffer(): Buffer {
    if (this.frame !== undefined) return this.frame.subarray(this.filled);
    if (READ_SCRATCH_BYTES - this.used < MIN_READ_BYTES) {
      this.scratch = Buffer.allocUnsafe(READ_SCRATCH_BYTES);
      this.used = 0;
    }
    return this.scratch.subarray(this.used, Math.min(READ_SCRATCH_BYTES, this.used + READ_WINDOW_BYTES));
  }

  /** `bytes` were read into the buffer {@link nextBuffer} gave. Throws when the stream is malformed. */
  read(bytes: number): void {
    const frame = this.frame;
    if (frame !== undefined) {
      this.filled += bytes;
      if (this.filled < frame.length) return;
      this.frame = undefined;
      this.filled = 0;
      this.onFrames(this.decoder.push(frame));
      return;
    }
    const chunk = this.scratch.subarray(this.used, this.used + bytes);
    this.used += bytes;
    const frames = this.decoder.push(chunk);
    const partial = this.decoder.partialFrameBytes;
    if (partial >= READ_WINDOW_BYTES) {
      const target = Buffer.allocUnsafe(partial);
      let at = 0;
      for (const part of this.decoder.takePartialFrame()) at += part.copy(target, at);
      this.frame = target;
      this.filled = at;
    }
    if (frames.length > 0) this.onFrames(frames);
  }
}
