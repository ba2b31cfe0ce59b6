/**
 * Every error @net/core throws, each with a stable `code` (callers branch on `err.code`, never on the message).
 * Messages name the input at fault and what is accepted. Codes are listed in packages/core/README.md under
 * "Error codes"; a retired code is never reused.
 */

/** Base class of every @net error. */
export class NetError extends Error {
  override name = 'NetError';
  code = 'NET_ERR';
}

/** An endpoint string or object that cannot be parsed or is out of range. */
export class BadEndpointError extends NetError {
  override name = 'BadEndpointError';
  override code = 'NET_ERR_BAD_ENDPOINT' as const;
  readonly input: string;
  constructor(input: string, reason: string, options?: ErrorOptions) {
    super(`invalid endpoint "${input}": ${reason}`, options);
    this.input = input;
  }
}

/** A Unix socket path longer than Linux's sun_path (108 bytes including the terminating NUL). */
export class UnixPathTooLongError extends NetError {
  override name = 'UnixPathTooLongError';
  override code = 'NET_ERR_UNIX_PATH_TOO_LONG' as const;
  readonly path: string;
  readonly bytes: number;
  constructor(path: string, bytes: number, max: number) {
    super(
      `unix socket path "${path}" is ${bytes} bytes long: at most ${max} bytes are accepted (sun_path is 108 bytes)`,
    );
    this.path = path;
    this.bytes = bytes;
  }
}

/** The stream ended (orderly FIN) before the expected number of bytes arrived. */
export class PrematureEofError extends NetError {
  override name = 'PrematureEofError';
  override code = 'NET_ERR_PREMATURE_EOF' as const;
  readonly expected: number;
  readonly received: number;
  readonly data: Buffer;
  constructor(expected: number, received: number, data: Buffer, options?: ErrorOptions) {
    super(`stream ended after ${received} of ${expected} bytes`, options);
    this.expected = expected;
    this.received = received;
    this.data = data;
  }
}

/** The peer reset the connection (RST, ECONNRESET/EPIPE), as opposed to an orderly shutdown. */
export class PeerResetError extends NetError {
  override name = 'PeerResetError';
  override code = 'NET_ERR_PEER_RESET' as const;
  readonly received: number;
  constructor(received: number, options?: ErrorOptions) {
    super(`connection reset by peer after ${received} bytes were received`, options);
    this.received = received;
  }
}

/** The socket was closed or destroyed locally while an operation waited on it. */
export class SocketClosedError extends NetError {
  override name = 'SocketClosedError';
  override code = 'NET_ERR_SOCKET_CLOSED' as const;
  constructor(what: string, options?: ErrorOptions) {
    super(`socket closed before ${what} completed`, options);
  }
}

/** More bytes arrived than a read allowed. */
export class SizeLimitError extends NetError {
  override name = 'SizeLimitError';
  override code = 'NET_ERR_SIZE_LIMIT' as const;
  readonly limit: number;
  readonly received: number;
  constructor(limit: number, received: number) {
    super(`peer sent at least ${received} bytes: at most ${limit} bytes are accepted`);
    this.limit = limit;
    this.received = received;
  }
}

/**
 * A peer answered, but not with what the protocol promises: an echo that differs from what was sent, a reply longer
 * than allowed, a greeting without its line end. Client commands exit 1 on it (see client-exit.ts).
 */
export class BadReplyError extends NetError {
  override name = 'BadReplyError';
  override code = 'NET_ERR_BAD_REPLY' as const;
  readonly target: string;
  constructor(target: string, what: string, options?: ErrorOptions) {
    super(`wrong answer from ${target}: ${what}`, options);
    this.target = target;
  }
}

/** The address is already taken by another socket. */
export class AddressInUseError extends NetError {
  override name = 'AddressInUseError';
  override code = 'NET_ERR_ADDR_IN_USE' as const;
  readonly endpoint: string;
  constructor(endpoint: string, options?: ErrorOptions) {
    super(
      `cannot listen on ${endpoint}: address already in use; stop the other process, choose another port, or use port 0 for a free one`,
      options,
    );
    this.endpoint = endpoint;
  }
}

/** Permission denied on bind: a port below 1024 without privilege, or a Unix path in a directory we cannot write. */
export class AccessDeniedError extends NetError {
  override name = 'AccessDeniedError';
  override code = 'NET_ERR_ACCESS' as const;
  readonly endpoint: string;
  /** How to fix it (the part of the message after "permission denied; "), for callers that add their own advice. */
  readonly hint: string;
  constructor(endpoint: string, hint: string, options?: ErrorOptions) {
    super(`cannot listen on ${endpoint}: permission denied; ${hint}`, options);
    this.endpoint = endpoint;
    this.hint = hint;
  }
}

/** One address a connect attempt tried, and why it failed. */
export interface ConnectAttempt {
  address: string;
  error: Error;
}

/** Every address of a connect failed; `attempts` says which and why. */
export class ConnectError extends NetError {
  override name = 'ConnectError';
  override code = 'NET_ERR_CONNECT' as const;
  readonly target: string;
  readonly attempts: readonly ConnectAttempt[];
  constructor(target: string, attempts: readonly ConnectAttempt[], options?: ErrorOptions) {
    const tried = attempts.map((a) => `${a.address}: ${(a.error as NodeJS.ErrnoException).code ?? a.error.message}`);
    super(`cannot connect to ${target}: ${tried.length ? `tried ${tried.join('; ')}` : 'no address to try'}`, options);
    this.target = target;
    this.attempts = attempts;
  }
}

/** A connect or read did not finish within its timeout. */
export class TimeoutError extends NetError {
  override name = 'TimeoutError';
  override code = 'NET_ERR_TIMEOUT' as const;
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number, options?: ErrorOptions) {
    super(`${what} timed out after ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends NetError {
  override name = 'AbortedError';
  override code = 'NET_ERR_ABORTED' as const;
  constructor(what: string, options?: ErrorOptions) {
    super(`${what} was aborted`, options);
  }
}

/** A configuration value (flag or environment variable) is invalid. */
export class ConfigError extends NetError {
  override name = 'ConfigError';
  override code = 'NET_ERR_BAD_CONFIG' as const;
  readonly setting: string;
  readonly value: string | undefined;
  constructor(setting: string, value: string | undefined, accepted: string) {
    super(value === undefined ? `invalid ${setting}: ${accepted}` : `invalid ${setting} "${value}": ${accepted}`);
    this.setting = setting;
    this.value = value;
  }
}

/** A socket option is not available on this platform or Node version. */
export class SocketOptionUnsupportedError extends NetError {
  override name = 'SocketOptionUnsupportedError';
  override code = 'NET_ERR_SOCKOPT_UNSUPPORTED' as const;
  readonly option: string;
  constructor(option: string, reason: string, options?: ErrorOptions) {
    super(`socket option ${option} is not available: ${reason}`, options);
    this.option = option;
  }
}

/** A socket option value out of the kernel's range, or a set that did not read back as asked. */
export class SocketOptionError extends NetError {
  override name = 'SocketOptionError';
  override code = 'NET_ERR_SOCKOPT' as const;
  readonly option: string;
  constructor(option: string, message: string, options?: ErrorOptions) {
    super(`${option}: ${message}`, options);
    this.option = option;
  }
}

/** A PROXY protocol header that is malformed, untrusted or late; `reason` is a stable label for metrics. */
export class ProxyProtocolError extends NetError {
  override name = 'ProxyProtocolError';
  override code = 'NET_ERR_PROXY_PROTOCOL' as const;
  readonly reason: string;
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(`PROXY protocol: ${message}`, options);
    this.reason = reason;
  }
}

/** Batched datagram I/O (recvmmsg/sendmmsg) cannot run here: not Linux x64/arm64, or koffi missing. */
export class DatagramBatchUnsupportedError extends NetError {
  override name = 'DatagramBatchUnsupportedError';
  override code = 'NET_ERR_DATAGRAM_BATCH_UNSUPPORTED' as const;
  constructor(reason: string, options?: ErrorOptions) {
    super(`batched datagram I/O is not available: ${reason}`, options);
  }
}

/** A system call of batched datagram I/O failed; `errnoCode` is the errno as Node names it ('EPERM', 'ENOBUFS'). */
export class DatagramBatchError extends NetError {
  override name = 'DatagramBatchError';
  override code = 'NET_ERR_DATAGRAM_BATCH' as const;
  readonly syscall: string;
  /** Negative, as libuv's. */
  readonly errno: number;
  readonly errnoCode: string;
  constructor(syscall: string, errno: number, errnoCode: string) {
    super(`${syscall} ${errnoCode}`);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoCode = errnoCode;
  }
}

/**
 * A socket-activated listener (`fd:N`, `systemd:NAME`) cannot be used: the process was not given it (no or foreign
 * LISTEN_FDS), the name is not among LISTEN_FDNAMES, or the descriptor is not a socket of the right type.
 */
export class SocketActivationError extends NetError {
  override name = 'SocketActivationError';
  override code = 'NET_ERR_SOCKET_ACTIVATION' as const;
  readonly endpoint: string;
  constructor(endpoint: string, reason: string, options?: ErrorOptions) {
    super(`cannot listen on ${endpoint}: ${reason}`, options);
    this.endpoint = endpoint;
  }
}

/**
 * A Node internal that a fast path needs (sys/node-internals.ts) is missing or does not look as Node 20-26 shape it:
 * a binding, a handle's method, dgram's state. `internal` names it.
 */
export class NodeInternalsError extends NetError {
  override name = 'NodeInternalsError';
  override code = 'NET_ERR_NODE_INTERNALS' as const;
  readonly internal: string;
  constructor(internal: string, reason: string, options?: ErrorOptions) {
    super(`${internal}: ${reason}`, options);
    this.internal = internal;
  }
}
