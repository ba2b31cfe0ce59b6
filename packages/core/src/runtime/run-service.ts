/**
 * The service runtime's entry: a service declares its name, settings, `serve` and other commands
 * (service-definition.ts); `runService` does the rest the same way for every service (docs/service-contract.md):
 * command-line and environment parsing, `--help`/`--version`/`--man`, exit code 2 on bad config, then `serve`
 * (serve.ts) or the command asked for.
 */
import { clientResult, jsonRequested, runClientCommand } from '../client/client-command.js';
import { CLIENT_EXIT, CLIENT_EXIT_MEANINGS, formatClientExitCodes } from '../client/client-exit.js';
import { ConfigError } from '../errors.js';
import { formatHelp, type ParsedConfig, parseConfig, type Schema } from './config.js';
import { EXIT, SERVE_EXIT_CODES } from './exit-codes.js';
import { formatManPage } from './man-page.js';
import { runRuntimeCommand } from './runtime-command.js';
import { serve } from './serve.js';
import type { ServiceDefinition } from './service-definition.js';
import { commandSchema, serveSchema, warnUnknownVariables } from './service-settings.js';

/**
 * Runs a service's command line. Never returns normally: the process exits with the command's code, or runs
 * until a signal drains it.
 */
export async function runService<S extends Schema>(
  def: ServiceDefinition<S>,
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const commands = def.commands ?? {};
  const names = ['serve', ...Object.keys(commands)];
  const first = argv[0];
  // A first word that names no command is a typo (`udp-echo frobnicate`, `daytime-tcp watch`), not serve's
  // positional (serve takes none): say so, rather than print serve's help or fail on a later flag.
  if (first !== undefined && !first.startsWith('-') && first !== 'serve' && !Object.hasOwn(commands, first)) {
    process.stderr.write(`${def.name}: unknown command "${first}": commands are ${names.join(', ')}\n`);
    process.exit(EXIT.USAGE);
  }
  const commandName = first !== undefined && (first === 'serve' || Object.hasOwn(commands, first)) ? first : 'serve';
  const rest = commandName === first ? argv.slice(1) : argv;

  if (rest.includes('--man')) {
    process.stdout.write(
      formatManPage(def as unknown as ServiceDefinition<Schema>, {
        schemaOf: (name, c) => commandSchema(def.envPrefix, name, c),
        exitCodesOf: (c) => ('client' in c ? CLIENT_EXIT_MEANINGS : (c.exitCodes ?? SERVE_EXIT_CODES)),
      }),
    );
    process.exit(EXIT.OK);
  }
  if (rest.includes('--version')) {
    process.stdout.write(`${def.name} ${def.version}\n`);
    process.exit(EXIT.OK);
  }
  const command = commandName === 'serve' ? undefined : commands[commandName];
  const schema: Schema = command ? commandSchema(def.envPrefix, commandName, command) : serveSchema(def);
  if (rest.includes('--help') || rest.includes('-h')) {
    const codes = command && 'client' in command ? formatClientExitCodes() : exitCodeLine(command?.exitCodes);
    const extra = `Commands: ${names.join(', ')} (default: serve). Run \`${def.name} COMMAND --help\` for each.\n${codes}`;
    process.stdout.write(
      formatHelp(schema, {
        usage: `${def.name} ${commandName}${command?.args ? ` ${command.args}` : ''} [options]`,
        description: command ? command.description : def.description,
        prefix: def.envPrefix,
        extra,
      }),
    );
    process.exit(EXIT.OK);
  }

  let parsed: ParsedConfig<Schema>;
  try {
    parsed = parseConfig(schema, {
      argv: rest,
      env,
      prefix: def.envPrefix,
      maxPositionals: command?.maxPositionals ?? 0,
      positionalsUsage: command?.args ?? '',
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${def.name}: ${err.message}\n`);
      // A script that asked for JSON gets JSON, also when the command line itself is wrong.
      if (command && 'client' in command && jsonRequested(schema, rest, env)) {
        const result = clientResult({}, { exitCode: CLIENT_EXIT.USAGE, elapsedMs: 0, timeoutMs: null, error: err });
        process.stdout.write(`${JSON.stringify(result)}\n`);
        await flushed(process.stdout);
      }
      process.exit(EXIT.USAGE);
    }
    throw err;
  }

  if (command) {
    let code: number;
    try {
      if ('client' in command) {
        warnUnknownVariables(def, parsed.unknownEnv, (line) =>
          process.stderr.write(`${def.name} ${commandName}: ${line}\n`),
        );
        code = await runClientCommand(`${def.name} ${commandName}`, command, {
          config: parsed.values,
          positionals: parsed.positionals,
          defaultPort: def.defaultPort,
        });
      } else
        code = command.runtime
          ? await runRuntimeCommand(def, commandName, command, schema, parsed)
          : await command.run({ config: parsed.values, positionals: parsed.positionals });
    } catch (err) {
      process.stderr.write(`${def.name} ${commandName}: ${(err as Error).message}\n`);
      code = err instanceof ConfigError ? EXIT.USAGE : EXIT.FAILURE;
    }
    // process.exit drops output still queued for a pipe: let stdout and stderr drain first.
    await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
    process.exit(code);
  }
  await serve(def, parsed as unknown as ParsedConfig<S>);
}

/** The `Exit codes:` line of a `--help`: the command's own, else the runtime's (which `serve` uses). */
function exitCodeLine(codes: Record<number, string> | undefined): string {
  const entries = Object.entries(codes ?? SERVE_EXIT_CODES).sort(([a], [b]) => Number(a) - Number(b));
  return `Exit codes: ${entries.map(([code, what]) => `${code} ${what}`).join(', ')}.`;
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}
