import { describe, expect, it } from 'vitest';
import {
  boolean,
  ConfigError,
  commonServeOptions,
  custom,
  decimal,
  describeConfig,
  envName,
  flagName,
  formatHelp,
  integer,
  list,
  oneOf,
  option,
  parseConfig,
  port,
  string,
  workersOption,
} from '../src/index.js';

const schema = {
  ...commonServeOptions(7000),
  ...workersOption(),
  maxLine: option({ type: integer(1, 1024), default: 80, description: 'Longest line' }),
  verbose: option({ type: boolean(), default: false, description: 'Say more' }),
  mode: option({ type: oneOf(['fast', 'safe']), default: 'safe', description: 'Mode' }),
  token: option({ type: string(), secret: true, description: 'A secret' }),
  ratio: option({ type: decimal(0, 1), default: 0.5, description: 'A ratio' }),
  tags: option({
    type: list(string({ maxLength: 8 })),
    repeatable: true,
    default: [] as string[],
    description: 'Tags',
  }),
};

function parse(argv: string[], env: Record<string, string> = {}) {
  return parseConfig(schema, { argv, env, prefix: 'DEMO' });
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config names', () => {
  it('derives kebab-case flags and PREFIX_UPPER_SNAKE variables from camelCase keys', () => {
    expect(flagName('adminPort')).toBe('admin-port');
    expect(envName('ECHO_TCP', 'adminPort', schema.adminPort)).toBe('ECHO_TCP_ADMIN_PORT');
    expect(envName('X', 'a', option({ type: string(), env: false, description: 'd' }))).toBeUndefined();
    expect(envName('X', 'a', option({ type: string(), env: 'CUSTOM', description: 'd' }))).toBe('CUSTOM');
  });
});

describe('parseConfig precedence', () => {
  it('uses the default when neither flag nor variable is set', () => {
    const { values, sources } = parse([]);
    expect(values.port).toBe(7000);
    expect(values.host).toBe('127.0.0.1');
    expect(sources.port).toBe('default');
  });

  it('takes the environment variable over the default', () => {
    const { values, sources } = parse([], { DEMO_PORT: '7100', DEMO_MAX_LINE: '12' });
    expect(values.port).toBe(7100);
    expect(values.maxLine).toBe(12);
    expect(sources.port).toBe('env');
  });

  it('takes the flag over the environment variable, whichever spelling the flag uses', () => {
    expect(parse(['--port', '7200'], { DEMO_PORT: '7100' }).values.port).toBe(7200);
    expect(parse(['--port=7300'], { DEMO_PORT: '7100' }).values.port).toBe(7300);
    expect(parse(['-p', '7400'], { DEMO_PORT: '7100' }).sources.port).toBe('flag');
  });

  it('does not read a variable whose flag is given, so an invalid variable behind a flag is harmless', () => {
    expect(parse(['--port', '0'], { DEMO_PORT: '70000' }).values.port).toBe(0);
  });

  it('treats an empty variable as unset', () => {
    expect(parse([], { DEMO_PORT: '' }).values.port).toBe(7000);
  });

  it('reads booleans as bare flags, --no- flags, and words', () => {
    expect(parse(['--verbose']).values.verbose).toBe(true);
    expect(parse(['--no-verbose'], { DEMO_VERBOSE: 'yes' }).values.verbose).toBe(false);
    expect(parse([], { DEMO_VERBOSE: 'on' }).values.verbose).toBe(true);
  });

  it('adds the items of a repeated flag and splits a variable at commas', () => {
    expect(parse(['--tags', 'a', '--tags', 'b,c']).values.tags).toEqual(['a', 'b', 'c']);
    expect(parse([], { DEMO_TAGS: 'x, y' }).values.tags).toEqual(['x', 'y']);
  });

  it('parses endpoints given with --listen', () => {
    const { values } = parse(['--listen', '[::1]:7', '--listen', 'unix:/tmp/x.sock']);
    expect(values.listen).toEqual([
      { kind: 'ip', family: 6, address: '::1', port: 7 },
      { kind: 'unix', path: '/tmp/x.sock', abstract: false },
    ]);
  });

  it('accepts --workers auto or a count', () => {
    expect(parse(['--workers', 'auto']).values.workers).toBe('auto');
    expect(parse([], { DEMO_WORKERS: '4' }).values.workers).toBe(4);
  });

  it('lists variables with the prefix that match no setting', () => {
    expect(parse([], { DEMO_PROT: '1', OTHER_PORT: '1' }).unknownEnv).toEqual(['DEMO_PROT']);
  });
});

describe('parseConfig errors name the setting as given, the value and what is accepted', () => {
  it('a port out of range given as a flag', () => {
    const err = errorOf(() => parse(['--port', '70000']));
    expect(err.message).toBe('invalid --port "70000": expected a port number from 0 to 65535 (0 picks a free port)');
    expect(err.setting).toBe('--port');
    expect(err.value).toBe('70000');
    expect(err.code).toBe('NET_ERR_BAD_CONFIG');
  });

  it('a port out of range given as a variable names the variable', () => {
    expect(errorOf(() => parse([], { DEMO_PORT: '70000' })).message).toBe(
      'invalid DEMO_PORT "70000": expected a port number from 0 to 65535 (0 picks a free port)',
    );
  });

  it('a short flag is named as typed', () => {
    expect(errorOf(() => parse(['-p', 'x'])).message).toMatch(/^invalid -p "x": expected a port number/);
  });

  it('a negative limit', () => {
    expect(errorOf(() => parse(['--drain-timeout', '-1'])).message).toBe(
      'invalid --drain-timeout "-1": expected a number from 0 to 3600 seconds',
    );
    expect(errorOf(() => parse(['--max-line=0'])).message).toBe(
      'invalid --max-line "0": expected an integer from 1 to 1024',
    );
  });

  it('a worker count that is no number says that auto is accepted too', () => {
    for (const raw of ['zero', '0', '257', '1.5']) {
      expect(errorOf(() => parse(['--workers', raw])).message).toBe(
        `invalid --workers "${raw}": expected a number of processes from 1 to 256, or auto (one per CPU)`,
      );
    }
  });

  it('a word not in the choices', () => {
    expect(errorOf(() => parse(['--log-level', 'loud'])).message).toBe(
      'invalid --log-level "loud": expected one of fatal, error, warn, info, debug, trace, silent',
    );
  });

  it('a boolean that is no boolean', () => {
    expect(errorOf(() => parse([], { DEMO_VERBOSE: 'maybe' })).message).toBe(
      'invalid DEMO_VERBOSE "maybe": expected true or false (also 1/0, yes/no, on/off)',
    );
  });

  it('a bad endpoint keeps the endpoint parser reason and adds what is accepted', () => {
    const message = errorOf(() => parse(['--listen', '1.2.3.4:99999'])).message;
    expect(message).toMatch(/^invalid --listen "1\.2\.3\.4:99999": .*99999/);
    expect(message).toContain('expected');
  });

  it('an empty list item', () => {
    expect(errorOf(() => parse([], { DEMO_TAGS: 'a,,b' })).message).toMatch(
      /^invalid DEMO_TAGS "a,,b": expected a comma-separated list .*; found an empty item$/,
    );
  });

  it('an unknown flag lists the accepted ones', () => {
    const message = errorOf(() => parse(['--prot', '7'])).message;
    expect(message).toMatch(/^invalid option --prot: unknown option; accepted options are --host, --port, /);
  });

  it('a flag without its value', () => {
    expect(errorOf(() => parse(['--port'])).message).toBe(
      'invalid --port: a value is required: a port number from 0 to 65535 (0 picks a free port)',
    );
    expect(errorOf(() => parse(['--port', '--host', 'x'])).message).toMatch(/^invalid --port: a value is required/);
  });

  it('--no- on a setting that is not a boolean', () => {
    expect(errorOf(() => parse(['--no-port'])).message).toBe(
      'invalid --no-port: only a boolean flag can be negated with --no-',
    );
  });

  it('a positional argument where none is accepted', () => {
    expect(errorOf(() => parse(['extra'])).message).toBe(
      'invalid argument "extra": unexpected argument; no positional arguments are accepted (see --help)',
    );
  });

  it('accepts positionals up to the declared count', () => {
    const parsed = parseConfig({}, { argv: ['a:1', 'b'], env: {}, prefix: 'X', maxPositionals: 2 });
    expect(parsed.positionals).toEqual(['a:1', 'b']);
    expect(() =>
      parseConfig(
        {},
        { argv: ['a', 'b', 'c'], env: {}, prefix: 'X', maxPositionals: 2, positionalsUsage: 'HOST:PORT' },
      ),
    ).toThrow('invalid argument "c": unexpected argument; expected HOST:PORT (see --help)');
  });
});

describe('value types', () => {
  it('integer rejects fractions, words and unsafe integers', () => {
    const t = integer(0, 10);
    expect(t.parse(' 7 ')).toBe(7);
    for (const raw of ['1.5', 'ten', '', '11', '99999999999999999999'])
      expect(() => t.parse(raw)).toThrow(/expected an integer from 0 to 10/);
  });

  it('decimal accepts fractions within range', () => {
    expect(decimal(0, 5, 'seconds').parse('.5')).toBe(0.5);
    expect(() => decimal(0, 5).parse('1e3')).toThrow('expected a number from 0 to 5');
  });

  it('port accepts 0 to 65535', () => {
    expect(port().parse('0')).toBe(0);
    expect(() => port().parse('-1')).toThrow();
  });

  it('custom passes the parser message through', () => {
    const even = custom('an even number', (raw) => {
      if (Number(raw) % 2 !== 0) throw new Error('expected an even number');
      return Number(raw);
    });
    const s = { n: option({ type: even, description: 'n' }) };
    expect(() => parseConfig(s, { argv: ['--n', '3'], env: {}, prefix: 'X' })).toThrow(
      'invalid --n "3": expected an even number',
    );
  });
});

describe('help and the start-up config', () => {
  it('lists every flag with its variable and default', () => {
    const help = formatHelp(schema, { usage: 'demo serve [options]', description: 'A demo.', prefix: 'DEMO' });
    for (const key of Object.keys(schema)) {
      const line = help.split('\n').find((l) => l.trimStart().startsWith(`--${flagName(key)}`));
      expect(line, key).toBeDefined();
      expect(line).toContain(`Env: DEMO_${flagName(key).toUpperCase().replace(/-/g, '_')}.`);
      expect(line).toContain('Default: ');
    }
    expect(help).toContain('Default: 7000.');
    expect(help).toContain('--port, -p');
  });

  it('redacts secrets in the start-up config and in help', () => {
    const { values } = parse([], { DEMO_TOKEN: 's3cret' });
    expect(describeConfig(schema, values).token).toBe('[redacted]');
    expect(JSON.stringify(describeConfig(schema, values))).not.toContain('s3cret');
  });
});
