import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { DiscoveryService, ExternalContextCreator, MetadataScanner, ModulesContainer } from '@nestjs/core';
import type { MessageHandler } from '@nestjs/microservices';
import { RocketError } from '@rocketnest/core-broker';
import type { Subscription } from 'rxjs';
import {
  ROCKET_LISTENER_EXTRAS,
  ROCKET_LISTENER_METHOD,
  type RocketListenerDeclaration,
} from './rocket-listener.decorator';
import { RocketServer } from './rocket.server';

/** `@Payload()` and `@Ctx()` (Nest's `RpcParamtype` 3 and 6) for handlers built here; the args are `[payload, context]`. */
const RPC_PARAMS = {
  exchangeKeyForValue(type: number, data: unknown, args: unknown[] | undefined): unknown {
    if (!args) return null;
    if (type === 3) {
      const payload = args[0] as Record<string, unknown> | undefined;
      return typeof data === 'string' && data !== '' ? payload?.[data] : payload;
    }
    return type === 6 ? args[1] : null;
  },
};
/** Where Nest's param decorators (`@Payload`, `@Ctx`, custom ones) keep their metadata. */
const PARAM_ARGS_METADATA = '__routeArguments__';

/**
 * Serves `@RocketListener` methods of providers (`@Injectable()` classes), not only of controllers,
 * as `@nestjs/bullmq` and `@nestjs/schedule` find their handlers: every `RocketServer` the app
 * connects gets a handler per such method, built with Nest's `ExternalContextCreator` in the `rpc`
 * context, so pipes, guards, interceptors and exception filters apply as on a controller. Nest
 * registers controllers' handlers itself; a class listed as both is served once, as a controller.
 */
@Injectable()
export class RocketListenerExplorer implements OnModuleDestroy {
  private readonly subscription: Subscription;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly contexts: ExternalContextCreator,
    modules: ModulesContainer,
  ) {
    // Nest announces every microservice server of this app here (replayed for earlier ones); by
    // then every provider is instantiated, and the server has not started listening yet.
    this.subscription = modules.getRpcTargetRegistry<unknown>().subscribe((target) => {
      if (target instanceof RocketServer) this.register(target);
    });
  }

  private register(server: RocketServer): void {
    const controllers = new Set(this.discovery.getControllers().map((w) => w.metatype));
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (
        !instance ||
        typeof instance !== 'object' ||
        !wrapper.metatype ||
        controllers.has(wrapper.metatype)
      ) {
        continue;
      }
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (!prototype) continue;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const callback = (prototype as Record<string, unknown>)[method];
        if (typeof callback !== 'function') continue;
        const declared = Reflect.getMetadata(ROCKET_LISTENER_METHOD, callback) as
          RocketListenerDeclaration[] | undefined;
        if (!declared) continue;
        if (!wrapper.isDependencyTreeStatic()) {
          server.failAtListen(
            new RocketError(
              'INVALID_OPTION',
              `${declared[0]!.metadata.handlerName}: @RocketListener on a request-scoped provider is not supported; make the provider a singleton (the default scope)`,
            ),
          );
          continue;
        }
        const handler = this.contexts.create(
          instance,
          callback as (...args: unknown[]) => unknown,
          method,
          PARAM_ARGS_METADATA,
          RPC_PARAMS,
          undefined,
          undefined,
          { guards: true, interceptors: true, filters: true },
          'rpc',
        ) as MessageHandler;
        for (const { pattern, metadata, isEvent } of declared) {
          server.addHandler(pattern, handler, isEvent, { [ROCKET_LISTENER_EXTRAS]: metadata });
        }
      }
    }
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }
}
