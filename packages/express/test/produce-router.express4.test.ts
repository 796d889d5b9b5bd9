// The same cases on Express 4: `express` resolves to Express 4 for every module of this test file,
// the router's own `express.Router()` and `express.raw()` included.
import express from 'express';
import { produceRouterCases } from './produce-router.cases';

jest.mock('express', () => jest.requireActual('express4'));

test('express resolves to Express 4 here', () => {
  expect(express).toBe(jest.requireActual('express4'));
  expect(express).not.toBe(jest.requireActual('express'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  expect((require('express4/package.json') as { version: string }).version).toMatch(/^4\./);
});

describe('rocketProduceRouter on Express 4', () => produceRouterCases('express 4'));
