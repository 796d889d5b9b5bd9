import type { Socket } from 'node:net';

/**
 * Batches the frames written to one socket during one turn of the event loop: the first write of a
 * turn corks the socket and a microtask uncorks it, so a burst of small frames (a producer's
 * pipelined sends, a broker's responses) leaves in one `writev` system call instead of one each.
 * Frame parts (`encodeFrameParts`) are written uncopied.
 */
export class SocketWriter {
  private corked = false;

  constructor(private readonly socket: Socket) {}

  /** Queues a frame's parts; returns false when the socket is destroyed (nothing written). */
  write(parts: readonly Buffer[]): boolean {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return false;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      queueMicrotask(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    for (const part of parts) socket.write(part);
    return true;
  }
}
