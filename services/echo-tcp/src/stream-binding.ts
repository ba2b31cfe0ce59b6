/**
 * Node's stream binding (`process.binding('stream_wrap')`): the WriteWrap request class and the shared stream state
 * array through which libuv's reads and writes report to JavaScript, as Node's own net.js uses them. For the echo's
 * direct reads and writes on a socket's handle (server.ts, direct-write.ts).
 *
 * `process.binding` is a documentation-only deprecation (DEP0111: a warning only under --pending-deprecation), and
 * this module is on its allow-list on Node 20, 24 and 26 (tested on each). Undefined where that stops being true: the
 * echo then goes through `net.Socket` as any stream does.
 */

/** The request object libuv's write completes; Node reads `oncomplete`, `handle` and sets `error`. */
export interface WriteRequest {
  // biome-ignore lint/suspicious/noExplicitAny: each user keeps its own fields on the request it reads back
  oncomplete: (this: any, status: number) => void;
  handle: unknown;
  error?: string;
}

export interface StreamBinding {
  WriteWrap: new () => WriteRequest;
  /** Shared with C++: where a read's byte count (or negative errno) and a write's outcome are left. */
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

function load(): StreamBinding | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<StreamBinding> }).binding('stream_wrap');
    if (
      typeof binding.WriteWrap === 'function' &&
      binding.streamBaseState instanceof Int32Array &&
      typeof binding.kReadBytesOrError === 'number' &&
      typeof binding.kLastWriteWasAsync === 'number'
    ) {
      return binding as StreamBinding;
    }
  } catch {
    // process.binding removed, or this module no longer allowed.
  }
  return undefined;
}

export const streamBinding: StreamBinding | undefined = load();
