import 'reflect-metadata';
import {
  BadRequestException,
  Injectable,
  Scope,
  UseGuards,
  UsePipes,
  type ArgumentMetadata,
  type CanActivate,
  type ExecutionContext,
  type PipeTransform,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import {
  RocketClient,
  RocketConnection,
  RocketContext,
  RocketListener,
  RocketModule,
  RocketServer,
  RocketTemplate,
  isRocketContext,
} from '../src';
import { CapturingLogger } from './support/nest-app';
import { waitFor } from './support/wait';

const seen: Array<{ payload: unknown; tag: string | undefined; group: string }> = [];
const guarded: string[] = [];

class RequireId implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body') return value; // the payload only, as ValidationPipe
    if (typeof (value as { id?: unknown })?.id !== 'string')
      throw new BadRequestException('id must be a string');
    return value;
  }
}

class OnlyRocket implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    guarded.push(isRocketContext(context) ? 'rocket' : 'other');
    return true;
  }
}

@Injectable()
class Pricing {
  quote(sku: string): number {
    return sku.length * 100;
  }
}

/** Listeners on a plain provider: no @Controller anywhere. */
@Injectable()
class StockListeners {
  constructor(private readonly pricing: Pricing) {}

  @RocketListener('stock', 'restocked', { group: 'stock-service' })
  @UseGuards(OnlyRocket)
  @UsePipes(new RequireId())
  onRestocked(@Payload() item: { id: string }, @Ctx() ctx: RocketContext): void {
    seen.push({ payload: item, tag: ctx.getTag(), group: ctx.getConsumerGroup() });
  }

  @RocketListener('stock', 'price', { group: 'stock-service', reply: true })
  price(@Payload('sku') sku: string): number {
    return this.pricing.quote(sku);
  }
}

describe('@RocketListener on an @Injectable() provider', () => {
  it('is served in a hybrid app: payload, context, pipes, guards, replies; a failed validation is dead-lettered', async () => {
    const logs = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [RocketModule.forRoot({ embedded: { topics: ['stock'] } })],
      providers: [Pricing, StockListeners],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: logs });
    const server = new RocketServer({
      transport: app.get(RocketConnection).transport,
      consumer: { consumeFromWhere: 'FIRST_OFFSET' },
    });
    const deadLettered: string[] = [];
    server.on('consumer.dead-lettered', ({ msgId }) => deadLettered.push(msgId));
    app.connectMicroservice({ strategy: server });
    await app.startAllMicroservices();
    await app.init();
    try {
      const template = app.get(RocketTemplate);
      await template.send('stock:restocked', { id: 'sku-1' });
      await waitFor(() => seen.length === 1, 'the provider listener');
      expect(seen).toEqual([{ payload: { id: 'sku-1' }, tag: 'restocked', group: 'stock-service' }]);
      expect(guarded).toEqual(['rocket']);
      const invalid = await template.send('stock:restocked', { id: 7 });
      await waitFor(() => deadLettered.length === 1, 'the invalid message dead-lettered');
      expect(deadLettered).toEqual([invalid.msgId]);
      expect(logs.has('error', 'StockListeners.onRestocked failed')).toBe(true);
      expect(logs.has('error', 'BadRequestException: id must be a string')).toBe(true);
      const price = await firstValueFrom(app.get(RocketClient).send<number>('stock:price', { sku: 'abc' }));
      expect(price).toBe(300);
    } finally {
      await app.close();
    }
  });

  it('is served in a pure microservice (createNestMicroservice with RocketModule)', async () => {
    seen.length = 0;
    const moduleRef = await Test.createTestingModule({
      imports: [RocketModule.forRoot({ embedded: { topics: ['stock'] } })],
      providers: [Pricing, StockListeners],
    }).compile();
    // the server reuses the module's embedded broker (see RocketServer: embedded)
    const app = moduleRef.createNestMicroservice({
      strategy: new RocketServer({ embedded: {}, consumer: { consumeFromWhere: 'FIRST_OFFSET' } }),
      logger: false,
    });
    await app.listen();
    try {
      await app.get(RocketTemplate).send('stock:restocked', { id: 'sku-2' });
      await waitFor(() => seen.length === 1, 'the provider listener');
      expect(seen[0]!.payload).toEqual({ id: 'sku-2' });
    } finally {
      await app.close();
    }
  });

  it('a request-scoped provider with a listener fails listen() naming it', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @RocketListener('stock', 'scoped', { group: 'scoped' })
      on(): void {}
    }
    const moduleRef = await Test.createTestingModule({
      imports: [RocketModule.forRoot({ embedded: { topics: ['stock'] } })],
      providers: [PerRequest],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.connectMicroservice({
      strategy: new RocketServer({ transport: app.get(RocketConnection).transport }),
    });
    try {
      await expect(app.startAllMicroservices()).rejects.toThrow(
        /PerRequest.on: @RocketListener on a request-scoped provider/,
      );
    } finally {
      await app.close();
    }
  });
});
