/**
 * The schema each command of a service is parsed with (the runtime adds its common settings to the service's own),
 * and the warning for `PREFIX_*` variables that none of them reads.
 */
import { clientCommandSchema } from '../client/client-command.js';
import { envName, type Schema } from './config.js';
import { commonCommandOptions, commonServeOptions } from './serve-options.js';
import type { CommandDef, ServiceDefinition } from './service-definition.js';

/** `serve`'s settings: the common ones (serve-options.ts) and the service's own. */
export function serveSchema<S extends Schema>(def: ServiceDefinition<S>): Schema {
  return { ...commonServeOptions(def.defaultPort), ...def.options };
}

/**
 * The settings a command is parsed with: a client command's own plus `--json`, with `PREFIX_<COMMAND>_*` variables;
 * a `runtime: true` command's plus the common logging and admin ones; a plain command's as declared.
 */
export function commandSchema(prefix: string, name: string, command: CommandDef<Schema>): Schema {
  if ('client' in command) return clientCommandSchema(prefix, name, command.options);
  return command.runtime ? { ...commonCommandOptions(), ...command.options } : command.options;
}

/**
 * Warns about `PREFIX_*` variables that no command of the service reads (typos, or names a release dropped), naming
 * the variable a command does read under the same setting: `DAYTIME_TCP_TIMEOUT` -> `DAYTIME_TCP_CLIENT_TIMEOUT`.
 */
export function warnUnknownVariables<S extends Schema>(
  def: ServiceDefinition<S>,
  unknownEnv: readonly string[],
  warn: (message: string, variable: string) => void,
): void {
  const known = new Set<string>();
  const schemas: Schema[] = [serveSchema(def)];
  for (const [name, command] of Object.entries(def.commands ?? {})) {
    schemas.push(commandSchema(def.envPrefix, name, command));
  }
  for (const schema of schemas) {
    for (const [key, opt] of Object.entries(schema)) known.add(envName(def.envPrefix, key, opt) ?? '');
  }
  const scopes = Object.keys(def.commands ?? {}).map(
    (name) => `${def.envPrefix}_${name.toUpperCase().replace(/-/g, '_')}_`,
  );
  for (const variable of unknownEnv) {
    if (known.has(variable)) continue;
    const setting = variable.slice(def.envPrefix.length + 1);
    const renamed = scopes.map((scope) => `${scope}${setting}`).filter((k) => known.has(k));
    const hint = renamed.length > 0 ? ` (did you mean ${renamed.join(' or ')}?)` : '';
    warn(`${variable} matches no setting of ${def.name} and is ignored${hint}`, variable);
  }
}
