import { produceRouterCases } from './produce-router.cases';

describe('rocketProduceRouter on Express 5', () => produceRouterCases('express 5'));
