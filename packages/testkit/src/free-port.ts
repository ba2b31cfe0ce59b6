/**
 * A port that is free right now on a loopback address. Prefer `--port 0` and the ready line: a port found free
 * here can be taken by another process before the service binds it. Use this only where a test must name the
 * port in advance (e.g. flag-over-variable precedence).
 */
import net from 'node:net';

/** Resolves with a TCP port that was free on `host` (default 127.0.0.1) a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
