/**
 * Whether this Node offers what the fast path (server.ts) needs, checked once at start for `--io`: the stream binding
 * (stream-binding.ts: WriteWrap and the shared stream state), and on TCP handles `writeBuffer`, `readStart` and
 * `readStop` (`process.binding('tcp_wrap')`, on DEP0111's allow-list like `stream_wrap`). The `handle` and `onread`
 * socket options and the handle's `onread` callback are checked on the first connection (server.ts hookReads
 * reads it; without one there the socket stays on Node's own read callback).
 */
import { streamBinding } from './stream-binding.js';

interface TcpBinding {
  TCP?: { prototype?: Record<string, unknown> };
}

/** Undefined when the fast path can run here; else what is missing, for the warning or the refusal. */
export function fastPathUnsupported(): string | undefined {
  if (streamBinding === undefined)
    return "process.binding('stream_wrap') is missing or has no WriteWrap, streamBaseState, kReadBytesOrError, kLastWriteWasAsync";
  let proto: Record<string, unknown> | undefined;
  try {
    const tcp = (process as unknown as { binding(name: string): TcpBinding }).binding('tcp_wrap');
    proto = tcp.TCP?.prototype;
  } catch {
    return "process.binding('tcp_wrap') is not available";
  }
  const missing = ['writeBuffer', 'readStart', 'readStop'].filter((name) => typeof proto?.[name] !== 'function');
  if (missing.length > 0) return `TCP handles have no ${missing.join(', ')}`;
  return undefined;
}
