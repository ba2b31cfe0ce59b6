import { suiteOnEngine } from './vitest.engine.js';

// echo-tcp's suite on the stream path (`--io stream`: net.Socket 'data', write, pause/drain).
export default suiteOnEngine('echo-tcp-stream', 'stream');
