import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, loadPinoPretty } from '../src/runtime/logger.js';

/** A stream whose written text lands in `text`. */
function capture() {
  const out = { text: '' };
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out.text += chunk.toString('utf8');
      done();
    },
  });
  return { out, destination };
}

// A directory outside the workspace: Node's resolution from there finds no node_modules/pino-pretty, as in an
// image built with `pnpm deploy --prod` (pino-pretty is a development dependency).
const noPretty = join(tmpdir(), 'net-core-logger-test', 'main.js');

describe('createLogger', () => {
  it('writes pretty lines with pino-pretty where it is installed (the workspace)', () => {
    expect(loadPinoPretty()).toBeTypeOf('function');
    const { out, destination } = capture();
    const log = createLogger({ service: 'demo', instance: 'i-1', level: 'info', format: 'pretty', destination });
    log.info('hello');
    expect(out.text).toMatch(/INFO.*hello/);
    expect(out.text.startsWith('{')).toBe(false);
  });

  it('falls back to JSON lines when pino-pretty cannot be resolved, and says why once', () => {
    expect(loadPinoPretty(noPretty)).toBeUndefined();
    const { out, destination } = capture();
    const log = createLogger({
      service: 'demo',
      instance: 'i-1',
      level: 'info',
      format: 'pretty',
      destination,
      prettyFrom: noPretty,
    });
    log.info('hello');
    const lines = out.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 40, service: 'demo', instance: 'i-1' });
    expect(lines[0].msg).toMatch(/^log format pretty needs pino-pretty/);
    expect(lines[1]).toMatchObject({ level: 30, msg: 'hello' });
  });

  it('says nothing about pino-pretty for format auto (not a terminal) or json', () => {
    for (const format of ['auto', 'json'] as const) {
      const { out, destination } = capture();
      createLogger({ service: 'demo', instance: 'i-1', level: 'info', format, destination, prettyFrom: noPretty }).info(
        'hello',
      );
      expect(
        out.text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).msg),
      ).toEqual(['hello']);
    }
  });
});
