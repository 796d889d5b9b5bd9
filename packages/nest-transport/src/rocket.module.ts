import {
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type InjectionToken,
  type ModuleMetadata,
  type OnModuleInit,
  type OptionalFactoryDependency,
  type Provider,
} from '@nestjs/common';
import { DiscoveryModule, DiscoveryService } from '@nestjs/core';
import { RocketConnection } from './rocket-connection';
import { RocketHealthIndicator } from './rocket-health.indicator';
import type {
  RocketLocalTransactionListener,
  RocketTransactionListenerOptions,
} from './rocket-transaction-listener.decorator';
import { RocketListenerExplorer } from './rocket-listener.explorer';
import { RocketClient } from './rocket.client';
import { ROCKET_MODULE_OPTIONS, ROCKET_TRANSACTION_LISTENER } from './rocket.constants';
import { RocketRuntime, type RocketModuleOptions } from './rocket.runtime';
import { RocketTemplate } from './rocket.template';

/** `RocketModule.forRootAsync`: options from a factory (e.g. `ConfigService`). */
export interface RocketModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory: (...args: never[]) => RocketModuleOptions | Promise<RocketModuleOptions>;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /** Register the module's providers globally. Default true. */
  isGlobal?: boolean;
}

/** Starts the transaction producer of every `@RocketTransactionListener` provider at module init. */
@Injectable()
export class RocketTransactionExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(RocketRuntime) private readonly runtime: RocketRuntime,
  ) {}

  async onModuleInit(): Promise<void> {
    for (const wrapper of this.discovery.getProviders()) {
      const type = wrapper.metatype as (abstract new (...args: never[]) => unknown) | null | undefined;
      if (!type || !wrapper.instance) continue;
      const options = Reflect.getMetadata(ROCKET_TRANSACTION_LISTENER, type) as
        RocketTransactionListenerOptions | undefined;
      if (!options) continue;
      await this.runtime.addTransactionListener(
        options,
        wrapper.instance as RocketLocalTransactionListener,
        type.name,
      );
    }
  }
}

function providers(): Provider[] {
  return [
    {
      provide: RocketRuntime,
      useFactory: (options: RocketModuleOptions) => RocketRuntime.open(options),
      inject: [ROCKET_MODULE_OPTIONS],
    },
    { provide: RocketConnection, useFactory: (r: RocketRuntime) => r.connection, inject: [RocketRuntime] },
    { provide: RocketClient, useFactory: (r: RocketRuntime) => r.client, inject: [RocketRuntime] },
    RocketHealthIndicator,
    RocketTemplate,
    RocketTransactionExplorer,
    RocketListenerExplorer,
  ];
}

const EXPORTS = [RocketRuntime, RocketConnection, RocketClient, RocketTemplate, RocketHealthIndicator];

/**
 * Connects a Nest app to RocketNest (embedded broker, standalone broker, or cluster) and provides
 * `RocketTemplate`, a `RocketClient` and the `RocketConnection`; starts a transaction producer for
 * each `@RocketTransactionListener`, and hands every `RocketServer` of the app the `@RocketListener`
 * methods of providers (controllers' are registered by Nest). Everything it started closes at application shutdown.
 * Message handlers run in a `RocketServer` (see the README: `connectMicroservice` with the module's
 * connection).
 */
@Module({})
export class RocketModule {
  static forRoot(options: RocketModuleOptions & { isGlobal?: boolean }): DynamicModule {
    const { isGlobal, ...rest } = options;
    return {
      module: RocketModule,
      global: isGlobal ?? true,
      imports: [DiscoveryModule],
      providers: [{ provide: ROCKET_MODULE_OPTIONS, useValue: rest }, ...providers()],
      exports: EXPORTS,
    };
  }

  static forRootAsync(options: RocketModuleAsyncOptions): DynamicModule {
    return {
      module: RocketModule,
      global: options.isGlobal ?? true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        {
          provide: ROCKET_MODULE_OPTIONS,
          useFactory: options.useFactory as (...args: unknown[]) => Promise<RocketModuleOptions>,
          inject: options.inject ?? [],
        },
        ...providers(),
      ],
      exports: EXPORTS,
    };
  }
}
