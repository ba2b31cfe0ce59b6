/**
 * Every symbol echo-tcp keeps state under, in one place (as pino's lib/symbols.js): a reader looking for where a
 * connection's state lives finds it here, and nothing private is reachable by a string key.
 */

/** A connection's state on its socket: one ConnectionState (connection-state.ts), the only per-connection key. */
export const kConnection: unique symbol = Symbol('echo-tcp.connection');
