/**
 * @net/test-support: what every test suite shares, @net/core's included (so it depends on nothing of ours):
 * spawning a service or command with its JSON log lines read, waiting for its ready line, and never letting it
 * outlive the test; CPU time from /proc with the real clock tick; a seeded PRNG. @net/testkit re-exports it.
 */
export * from './logged-process.js';
export * from './prng.js';
export * from './proc-stat.js';
export * from './service-process.js';
