export { createTestBroker, TestBroker, DEFAULT_TEST_STORE_BYTES, DEFAULT_WAIT_TIMEOUT } from './test-broker';
export type { TestBrokerOptions, TestClock } from './test-broker';
export { VirtualClock } from './virtual-clock';
export { toMs } from './duration';
export type { Duration } from './duration';
