/**
 * The optional greeting line: sent once on connect, before any echo, so a user can see which replica answered
 * behind a load balancer. Off by default: with a greeting the service is no longer a pure RFC 862 echo.
 */

/** Values the template may use. */
export interface GreetingValues {
  instance: string;
  hostname: string;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\' };

/**
 * Renders a greeting template once, at start-up: `{instance}` and `{hostname}` are replaced, and the escapes
 * `\n`, `\r`, `\t` and `\\` (typed literally on a command line or in an environment variable) become the
 * characters they name. Any other backslash sequence and any other `{word}` are kept as written.
 *
 * @example renderGreeting('hello from {instance}\n', { instance: 'echo-1', hostname: 'h' }) // 'hello from echo-1\n'
 */
export function renderGreeting(template: string, values: GreetingValues): Buffer {
  const text = template
    .replace(/\\([nrt\\])/g, (_, c: string) => ESCAPES[c] ?? c)
    .replace(/\{(instance|hostname)\}/g, (_, key: 'instance' | 'hostname') => values[key]);
  return Buffer.from(text, 'utf8');
}
