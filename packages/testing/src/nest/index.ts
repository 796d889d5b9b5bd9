// @rocketnest/testing/nest: the Nest side of the test kit (needs @rocketnest/nest-transport).
export { RocketTestingModule, rocketTestServer } from './rocket-testing.module';
export type { RocketTestingModuleOptions } from './rocket-testing.module';
