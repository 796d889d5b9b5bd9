export {
  createTestBroker,
  TestBroker,
  DEFAULT_TEST_STORE_BYTES,
  DEFAULT_WAIT_TIMEOUT,
  DEFAULT_RUN_ALL_MAX_TIME,
  DEFAULT_RUN_ALL_REAL_MAX_TIME,
  DEFAULT_RUN_ALL_MAX_STEPS,
} from './test-broker';
export type { TestBrokerOptions, TestClock, RunAllOptions } from './test-broker';
export { VirtualClock } from './virtual-clock';
export { toMs } from './duration';
export type { Duration } from './duration';
