import * as grpc from '@grpc/grpc-js';
import { METHODS, type MethodName, SERVICE } from '../../src/rocketmq5/codec';

type Req<M extends MethodName> = Parameters<(typeof METHODS)[M]['request']['encode']>[0];
type Res<M extends MethodName> = ReturnType<(typeof METHODS)[M]['response']['decode']>;

/** A bare gRPC client of MessagingService for tests: raw bytes in, decoded messages or gRPC errors out. */
export class RawClient {
  readonly client: grpc.Client;

  constructor(
    address: string,
    readonly clientId = 'raw-client@1',
    credentials = grpc.credentials.createInsecure(),
    options: grpc.ClientOptions = {},
  ) {
    this.client = new grpc.Client(address, credentials, {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
      ...options,
    });
  }

  metadata(extra: Record<string, string> = {}): grpc.Metadata {
    const m = new grpc.Metadata();
    if (this.clientId) m.set('x-mq-client-id', this.clientId);
    for (const [k, v] of Object.entries(extra)) m.set(k, v);
    return m;
  }

  /** Sends `request` (or raw bytes) to `path` (a method name or a full path). */
  unaryRaw(
    path: string,
    bytes: Uint8Array,
    metadata = this.metadata(),
    deadlineMs = 10_000,
  ): Promise<Buffer> {
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(
        path.startsWith('/') ? path : `/${SERVICE}/${path}`,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => b,
        bytes,
        metadata,
        { deadline: Date.now() + deadlineMs },
        (error, value) => (error ? reject(error) : resolve(value!)),
      ),
    );
  }

  async unary<M extends MethodName>(
    method: M,
    request: Req<M>,
    metadata = this.metadata(),
    deadlineMs = 10_000,
  ): Promise<Res<M>> {
    const spec = METHODS[method];
    const bytes = await this.unaryRaw(method, spec.request.encode(request as never), metadata, deadlineMs);
    return spec.response.decode(bytes) as Res<M>;
  }

  /** A ReceiveMessage call: every frame until the stream ends. */
  receive(
    request: Req<'ReceiveMessage'>,
    deadlineMs = 10_000,
    metadata = this.metadata(),
  ): Promise<Array<Res<'ReceiveMessage'>>> {
    const spec = METHODS.ReceiveMessage;
    return new Promise((resolve, reject) => {
      const frames: Array<Res<'ReceiveMessage'>> = [];
      const call = this.client.makeServerStreamRequest(
        spec.path,
        (v: Req<'ReceiveMessage'>) => Buffer.from(spec.request.encode(v)),
        (b: Buffer) => spec.response.decode(b),
        request,
        metadata,
        { deadline: Date.now() + deadlineMs },
      );
      call.on('data', (frame: Res<'ReceiveMessage'>) => frames.push(frame));
      call.on('error', reject);
      call.on('end', () => resolve(frames));
    });
  }

  /** Opens Telemetry, writes `commands`, and collects what comes back until the stream ends or `untilReplies` arrived. */
  telemetry(
    commands: Array<Req<'Telemetry'>>,
    untilReplies = 1,
    metadata = this.metadata(),
    options: grpc.CallOptions = {},
    writeAfterMs = 0,
  ): Promise<{
    replies: Array<Res<'Telemetry'>>;
    error?: grpc.ServiceError;
    call: grpc.ClientDuplexStream<Req<'Telemetry'>, Res<'Telemetry'>>;
  }> {
    const spec = METHODS.Telemetry;
    return new Promise((resolve) => {
      const replies: Array<Res<'Telemetry'>> = [];
      const call = this.client.makeBidiStreamRequest(
        spec.path,
        (v: Req<'Telemetry'>) => Buffer.from(spec.request.encode(v)),
        (b: Buffer) => spec.response.decode(b),
        metadata,
        options,
      );
      call.on('data', (reply: Res<'Telemetry'>) => {
        replies.push(reply);
        if (replies.length >= untilReplies) resolve({ replies, call });
      });
      call.on('error', (error: grpc.ServiceError) => resolve({ replies, error, call }));
      call.on('end', () => resolve({ replies, call }));
      const write = (): void => commands.forEach((c) => call.write(c));
      if (writeAfterMs > 0) setTimeout(write, writeAfterMs);
      else write();
    });
  }

  close(): void {
    this.client.close();
  }
}
