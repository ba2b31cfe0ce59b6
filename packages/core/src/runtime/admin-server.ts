/**
 * The admin endpoint, off unless a port is given: `/healthz` (the process runs), `/readyz` (every listener is
 * up and no drain has started; load balancers and Kubernetes stop sending on 503) and `/metrics` (Prometheus
 * text). A raw TCP or UDP port cannot serve HTTP, hence a separate small `node:http` listener.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AdminState {
  /** True once every listener is up, false again when a drain starts. */
  ready(): boolean;
  /** Renders `/metrics`. */
  metrics(): Promise<{ contentType: string; body: string }>;
}

/**
 * Starts the admin HTTP server on host:port.
 * @returns the server and the port it listens on (useful with port 0).
 */
export async function startAdminServer(
  state: AdminState,
  options: { host: string; port: number },
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = state.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
    } else if (path === '/metrics') {
      state.metrics().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
    }
  });
  // The admin port is for probes and scrapes: short timeouts keep a stuck client from holding sockets.
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
