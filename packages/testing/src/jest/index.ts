// @rocketnest/testing/jest: Jest matchers for the test broker (`expect.extend(rocketMatchers)`).
export { rocketMatchers } from './matchers';
export type { PublishedMessageExpectation } from './matchers';
