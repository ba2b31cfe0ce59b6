/**
 * @net/testkit: the shared service contract (docs/service-contract.md) as a conformance suite, and the helpers
 * service tests use to spawn a built bin, read its logs, and scrape its admin endpoint.
 */
export * from './client-rule.js';
export * from './contract.js';
export * from './free-port.js';
export * from './http-get.js';
export * from './probe.js';
export * from './prometheus.js';
export * from './promtool.js';
export * from './rules.js';
export * from './service-process.js';
