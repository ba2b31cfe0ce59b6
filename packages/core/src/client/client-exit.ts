/**
 * The one table of exit codes every client and check command of every @net service uses, so that a script or a
 * health checker can tell "the service answered wrongly" from "nothing listens" from "it is slow" without knowing
 * which service it ran. The codes above 2 are sysexits(3)'s, which BSD and many network tools already use for
 * the same failures: EX_NOHOST 68, EX_UNAVAILABLE 69, EX_SOFTWARE 70, EX_TEMPFAIL 75, EX_PROTOCOL 76.
 */
import { NetError } from '../errors.js';

/** Exit codes of client and check commands (docs/service-contract.md, rule 9). */
export const CLIENT_EXIT = {
  /** The service answered as the protocol says. */
  OK: 0,
  /** It answered, but wrongly: an echo that differs, an oversized or malformed reply (NET_ERR_BAD_REPLY). */
  BAD_REPLY: 1,
  /** Bad command line or environment: nothing was sent. */
  USAGE: 2,
  /** EX_NOHOST: the host name does not resolve. */
  NO_HOST: 68,
  /** EX_UNAVAILABLE: refused (nothing listens; ICMP port unreachable for UDP) or unreachable; sysexits' catch-all. */
  UNAVAILABLE: 69,
  /** EX_SOFTWARE: an internal error of the client itself (a bug), not the service's doing. */
  SOFTWARE: 70,
  /** EX_TEMPFAIL: no (complete) answer within the timeout. */
  TIMEOUT: 75,
  /** EX_PROTOCOL: the exchange broke off: a reset, an end of stream before the whole answer, a short echo. */
  PROTOCOL: 76,
} as const;

/** One of the codes of {@link CLIENT_EXIT}. */
export type ClientExitCode = (typeof CLIENT_EXIT)[keyof typeof CLIENT_EXIT];

/** What each code means, as `--help` prints it (numeric order). */
export const CLIENT_EXIT_MEANINGS: Readonly<Record<ClientExitCode, string>> = {
  0: 'ok: the service answered as the protocol says',
  1: 'wrong answer: it answered, but not what the protocol promises (e.g. an echo that differs)',
  2: 'bad usage: an invalid flag, variable or HOST:PORT; nothing was sent',
  68: 'the host name does not resolve (EX_NOHOST)',
  69: 'refused or unreachable: nothing listens there, or no route (EX_UNAVAILABLE)',
  70: 'internal error of the client (EX_SOFTWARE)',
  75: 'timeout: no complete answer within --timeout (EX_TEMPFAIL)',
  76: 'the exchange broke off: reset, or the answer ended early (EX_PROTOCOL)',
};

/** The `Exit codes:` table that ends every client command's `--help`. */
export function formatClientExitCodes(): string {
  const rows = Object.entries(CLIENT_EXIT_MEANINGS).map(([code, what]) => `  ${code.padEnd(4)}${what}`);
  return `Exit codes (the same for every @net client and check command):\n${rows.join('\n')}`;
}

/** getaddrinfo failures as Node reports them: the name does not exist, has no address, or no resolver answered. */
const RESOLVER_ERRORS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ENODATA', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);

/** errno codes of a connection the peer (or the path to it) refused: nothing listens, or no route. */
const UNAVAILABLE_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EAFNOSUPPORT',
  // A firewall's REJECT with icmp-admin-prohibited, and a Unix socket path that does not exist.
  'EACCES',
  'EPERM',
  'ENOENT',
]);

/** errno codes of an exchange that had started and broke off. */
const PROTOCOL_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * How far an exchange got before it failed: each failure has a stage, and of several attempts (Happy Eyeballs tries
 * every address) the one that got furthest decides. A peer that reset us after connecting tells more than an
 * address that refused; a timeout means an attempt was still in progress, further than one refused.
 */
const STAGE: Readonly<Record<ClientExitCode, number>> = {
  0: 6,
  68: 0,
  69: 1,
  70: -1,
  75: 2,
  76: 3,
  2: 4,
  1: 5,
};

/**
 * The exit code of a client command that failed with `err` (sysexits(3) style, {@link CLIENT_EXIT}).
 *
 * A `ConnectError` (every address failed) or an `AggregateError` (Node's own `autoSelectFamily`) is judged by the
 * attempt that got furthest: a reset on one address beats a refusal on another. A system error is judged by its
 * errno; an error with neither a @net code nor an errno is a bug of the client: 70.
 */
export function clientExitCode(err: unknown): ClientExitCode {
  if (typeof err !== 'object' || err === null) return CLIENT_EXIT.SOFTWARE;
  const attempts = attemptErrors(err);
  if (attempts !== undefined) {
    if (attempts.length === 0) return CLIENT_EXIT.UNAVAILABLE; // resolved to no usable address
    let best: ClientExitCode = clientExitCode(attempts[0]);
    for (const attempt of attempts.slice(1)) {
      const code = clientExitCode(attempt);
      if (STAGE[code] > STAGE[best]) best = code;
    }
    return best;
  }
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case 'NET_ERR_BAD_REPLY':
    case 'NET_ERR_SIZE_LIMIT':
      return CLIENT_EXIT.BAD_REPLY;
    case 'NET_ERR_BAD_CONFIG':
    case 'NET_ERR_BAD_ENDPOINT':
    case 'NET_ERR_UNIX_PATH_TOO_LONG':
      return CLIENT_EXIT.USAGE;
    case 'NET_ERR_TIMEOUT':
    case 'ETIMEDOUT':
      return CLIENT_EXIT.TIMEOUT;
    case 'NET_ERR_PEER_RESET':
    case 'NET_ERR_PREMATURE_EOF':
      return CLIENT_EXIT.PROTOCOL;
  }
  if (typeof code === 'string') {
    if (RESOLVER_ERRORS.has(code)) return CLIENT_EXIT.NO_HOST;
    if (PROTOCOL_ERRORS.has(code)) return CLIENT_EXIT.PROTOCOL;
    if (UNAVAILABLE_ERRORS.has(code)) return CLIENT_EXIT.UNAVAILABLE;
  }
  // Another @net error or errno (EMFILE, a closed socket, ...): the service could not be used, and sysexits(3)
  // names 69 its catch-all for "something you wanted to do doesn't work, but you don't know why".
  if (err instanceof NetError || (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code))) {
    return CLIENT_EXIT.UNAVAILABLE;
  }
  return CLIENT_EXIT.SOFTWARE;
}

/** The per-address errors of a failed connect, or undefined when `err` is not one. */
function attemptErrors(err: object): unknown[] | undefined {
  if ((err as { code?: unknown }).code === 'NET_ERR_CONNECT') {
    const attempts = (err as { attempts?: readonly { error: unknown }[] }).attempts;
    return Array.isArray(attempts) ? attempts.map((a) => a.error) : undefined;
  }
  if (err instanceof AggregateError) return [...err.errors];
  return undefined;
}
