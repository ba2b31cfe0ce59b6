/**
 * The exit codes every service shares, and the words `--help` and the manual page use for those of `serve` (a
 * command declares its own, see `CommandBase.exitCodes`).
 */

/** Exit codes shared by every service. */
export const EXIT = {
  OK: 0,
  /** Start-up failed (e.g. the address is in use) or a plain command failed; client commands use CLIENT_EXIT. */
  FAILURE: 1,
  /** Bad command line or environment. */
  USAGE: 2,
  /** An uncaught error (EX_SOFTWARE). */
  SOFTWARE: 70,
  /** A second SIGTERM/SIGINT during the drain. */
  INTERRUPTED: 130,
} as const;

/** What each exit code of `serve` means, as `--help` and the manual page print it. */
export const SERVE_EXIT_CODES: Readonly<Record<number, string>> = {
  [EXIT.OK]: 'ok',
  [EXIT.FAILURE]: 'failure',
  [EXIT.USAGE]: 'bad usage or configuration',
  [EXIT.SOFTWARE]: 'uncaught error',
  [EXIT.INTERRUPTED]: 'interrupted during drain',
};
