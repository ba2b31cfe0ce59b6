/** libuv's negative errnos, named as Node names them, without building an Error unless one is wanted. */
import { getSystemErrorName } from 'node:util';

const names = new Map<number, string>();

/** 'ECONNRESET' for -104; `E<n>` for an errno libuv does not know. Cached: called once per failed connection. */
export function errnoCode(errno: number): string {
  let code = names.get(errno);
  if (code === undefined) {
    try {
      code = getSystemErrorName(errno);
    } catch {
      code = `E${-errno}`;
    }
    names.set(errno, code);
  }
  return code;
}

/** A negative libuv errno as the Error Node itself would give ('write EPIPE', code, errno, syscall). */
export function systemError(errno: number, syscall = 'write'): NodeJS.ErrnoException {
  const code = errnoCode(errno);
  const error = new Error(`${syscall} ${code}`) as NodeJS.ErrnoException;
  error.errno = errno;
  error.code = code;
  error.syscall = syscall;
  return error;
}
