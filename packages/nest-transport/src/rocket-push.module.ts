import {
  Inject,
  Injectable,
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type InjectionToken,
  type ModuleMetadata,
  type OnApplicationBootstrap,
  type OptionalFactoryDependency,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RocketError } from '@rocketnest/core-broker';
import { PushServer, type PushServerOptions } from '@rocketnest/core-broker/push';
import type * as http from 'node:http';
import { RocketConnection } from './rocket-connection';

/** `RocketPushModule.forRoot`: the push server's options; it reads the broker through the app's `RocketModule` connection. */
export type RocketPushModuleOptions = Omit<PushServerOptions, 'transport' | 'driver' | 'clock'>;

/** `RocketPushModule.forRootAsync`: options from a factory (e.g. a JWT key from `ConfigService`). */
export interface RocketPushModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory: (...args: never[]) => RocketPushModuleOptions | Promise<RocketPushModuleOptions>;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
}

const ROCKET_PUSH_OPTIONS = Symbol('ROCKET_PUSH_OPTIONS');

/** Attaches the push server to the app's HTTP server at bootstrap, and closes it before the app's shutdown. */
@Injectable()
class RocketPushLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(PushServer) private readonly push: PushServer,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as http.Server | undefined;
    if (!server) {
      throw new RocketError(
        'INVALID_OPTION',
        'RocketPushModule needs an HTTP application (NestFactory.create), not a pure microservice',
      );
    }
    this.push.attach(server);
  }

  async beforeApplicationShutdown(): Promise<void> {
    // before the HTTP server and the RocketModule connection close: clients get 4000 (reconnect)
    await this.push.close();
  }
}

/**
 * Pushes topic messages to browsers over WebSocket (docs/push.md) from a Nest HTTP app: a
 * `PushServer` on the app's `RocketModule` connection, attached to the app's HTTP server at
 * `path` (default `/push`, client module at `/push/client.js`), closed at shutdown. Inject
 * `PushServer` for its metrics and events. Import `RocketModule` too. On Apache RocketMQ
 * (`RocketModule.forRoot({ apache })`) it reads through the connection's driver: resuming is
 * exact on the same server process only (docs/push.md, "On Apache RocketMQ").
 */
@Module({})
export class RocketPushModule {
  static forRoot(options: RocketPushModuleOptions): DynamicModule {
    return RocketPushModule.build([{ provide: ROCKET_PUSH_OPTIONS, useValue: options }], []);
  }

  static forRootAsync(options: RocketPushModuleAsyncOptions): DynamicModule {
    return RocketPushModule.build(
      [
        {
          provide: ROCKET_PUSH_OPTIONS,
          useFactory: options.useFactory as (...args: unknown[]) => Promise<RocketPushModuleOptions>,
          inject: options.inject ?? [],
        },
      ],
      options.imports ?? [],
    );
  }

  private static build(
    optionProviders: DynamicModule['providers'] & object,
    imports: NonNullable<ModuleMetadata['imports']>,
  ): DynamicModule {
    return {
      module: RocketPushModule,
      imports,
      providers: [
        ...optionProviders,
        {
          provide: PushServer,
          // an Apache connection (`RocketModule.forRoot({ apache })`) reads through its driver
          useFactory: (options: RocketPushModuleOptions, connection: RocketConnection) =>
            new PushServer({
              ...options,
              ...(connection.driver ? { driver: connection.driver } : { transport: connection.transport }),
              clock: connection.clock,
            }),
          inject: [ROCKET_PUSH_OPTIONS, RocketConnection],
        },
        RocketPushLifecycle,
      ],
      exports: [PushServer],
    };
  }
}
