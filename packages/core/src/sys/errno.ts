/**
 * errno values named as Node names them, and the Error Node itself would build for one. Kept in one place so that a
 * metric label, a log line and a thrown error spell an errno the same way, whichever layer saw it: libc leaves errno
 * positive (koffi's `errno()`), libuv hands it negative (a handle's read or write status).
 */
import { getSystemErrorName } from 'node:util';

const names = new Map<number, string>();

/** What libuv's names look like ('ECONNRESET', 'EOF', 'UNKNOWN'). */
const UV_NAME = /^[A-Z][A-Z0-9_]*$/;

/**
 * 'ECONNRESET' for 104 or -104. For an errno libuv does not know, `getSystemErrorName` answers a sentence
 * ("Unknown system error -133", Node 20 and 24); that becomes `E133`: one word, so it stays usable as a metric label,
 * and the number survives. Cached: echo-tcp calls it once per failed connection.
 */
export function errnoName(errno: number): string {
  const key = -Math.abs(errno);
  let name = names.get(key);
  if (name === undefined) {
    name = key === 0 ? 'E0' : getSystemErrorName(key);
    if (!UV_NAME.test(name)) name = `E${-key}`;
    names.set(key, name);
  }
  return name;
}

/** The Error Node builds for a failed system call: message 'read ECONNRESET', `code`, negative `errno`, `syscall`. */
export function systemError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = errnoName(errno);
  const error: NodeJS.ErrnoException = new Error(`${syscall} ${code}`);
  error.code = code;
  error.errno = -Math.abs(errno);
  error.syscall = syscall;
  return error;
}
