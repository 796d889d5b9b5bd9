// The CommonJS build of push-client.mjs, for Node's `require` and CommonJS test runners. It is
// generated at build time (scripts/build-push-client.js), so its typings are the module's own.
export * from './push-client.mjs';
