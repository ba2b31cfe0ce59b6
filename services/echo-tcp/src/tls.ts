/**
 * The optional TLS listeners (node:tls). The certificate and key are read from files at start and again on
 * SIGHUP, so a renewed certificate is picked up without dropping connections: `setSecureContext` applies to new
 * handshakes only. A reload that fails (a missing file, a key that does not match) keeps the previous pair.
 */
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';

/** The files of a certificate and its key. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** Reads and checks the pair; throws with the file named when one cannot be read or they do not match. */
export async function loadTlsContext(files: TlsFiles): Promise<tls.SecureContextOptions> {
  const [cert, key] = await Promise.all([read(files.cert, '--tls-cert'), read(files.key, '--tls-key')]);
  const options = { cert, key };
  try {
    // Fails here, not at the first handshake, on a malformed PEM or a key that does not match the certificate.
    tls.createSecureContext(options);
  } catch (err) {
    throw new Error(`--tls-cert ${files.cert} / --tls-key ${files.key}: ${(err as Error).message}`, { cause: err });
  }
  return options;
}

async function read(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * A TLS server for echo: half-open allowed (a client's close_notify/FIN must not cut the echoes still owed),
 * TCP_NODELAY on the underlying sockets, and a handshake that must finish within `handshakeTimeoutMs`.
 */
export function createTlsServer(context: tls.SecureContextOptions, handshakeTimeoutMs: number): tls.Server {
  return tls.createServer({ ...context, allowHalfOpen: true, noDelay: true, handshakeTimeout: handshakeTimeoutMs });
}
