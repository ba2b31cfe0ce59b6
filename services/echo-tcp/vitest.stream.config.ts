import { defineProject, mergeConfig } from 'vitest/config';
import fast from './vitest.config.js';

// echo-tcp's whole suite on the stream path (`--io stream`: net.Socket 'data', write, pause/drain).
export default mergeConfig(fast, defineProject({ test: { name: 'echo-tcp-stream', env: { ECHO_TCP_IO: 'stream' } } }));
