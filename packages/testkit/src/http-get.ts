/**
 * A minimal HTTP GET for admin endpoints: no keep-alive (a pooled socket would keep a draining service's admin
 * server busy), a bounded timeout, and the body as text.
 */
import http from 'node:http';

/** Status, headers and body of one GET. */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * GETs `url` and resolves with the status and body.
 * @throws the socket error (e.g. ECONNREFUSED) or a timeout error after `timeoutMs` (default 3000).
 */
export function httpGet(url: string, options: { timeoutMs?: number } = {}): Promise<HttpResponse> {
  const timeoutMs = options.timeoutMs ?? 3000;
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
