import { suiteOnEngine } from './vitest.engine.js';

// echo-tcp's suite on the fast path (`--io fast`: the raw echo's reads and writes on a net.Socket built around each
// accepted handle), where `auto` goes when raw handles are unavailable.
export default suiteOnEngine('echo-tcp-fast', 'fast');
