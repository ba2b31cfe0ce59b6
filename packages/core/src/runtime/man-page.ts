/**
 * A service's manual page (`<bin> --man`, section 1, man-pages(7) layout), made from the same tables as `--help`:
 * the settings of `serve` and of each command with their variables and defaults, and the exit codes of each. Written
 * in plain roff (the man(7) macros groff and mandoc both read), so `<bin> --man | man -l -` shows it and a package can
 * install it as `<bin>.1`.
 */
import { describeOptions, type Schema } from './config.js';
import { SERVE_EXIT_CODES } from './exit-codes.js';
import { commonServeOptions } from './serve-options.js';
import type { CommandDef, ServiceDefinition } from './service-definition.js';

/** How the runtime sees a command: the settings it parses it with, and its exit codes (as `--help` prints them). */
export interface ManPageCommands {
  schemaOf(name: string, command: CommandDef<Schema>): Schema;
  exitCodesOf(command: CommandDef<Schema>): Readonly<Record<number, string>>;
}

/** The roff source of `def`'s manual page. */
export function formatManPage(def: ServiceDefinition<Schema>, commandsAs: ManPageCommands): string {
  const commands = Object.entries(def.commands ?? {}) as [string, CommandDef<Schema>][];
  const out: string[] = [];
  const title = def.name.toUpperCase();
  // No date: the page must be the same on every build of one version (reproducible packages).
  out.push(`.TH ${quote(title)} 1 "" ${quote(`${def.name} ${def.version}`)} "User Commands"`);
  out.push('.SH NAME', `${text(def.name)} \\- ${text(firstSentence(def.description))}`);
  out.push('.SH SYNOPSIS');
  out.push(`.B ${text(def.name)}`, `[\\fBserve\\fR] [\\fIoptions\\fR]`);
  for (const [name, command] of commands) {
    out.push(
      '.br',
      `.B ${text(`${def.name} ${name}`)}`,
      `${command.args ? `${text(command.args)} ` : ''}[\\fIoptions\\fR]`,
    );
  }
  out.push('.SH DESCRIPTION', text(def.description));
  out.push(
    '.PP',
    text(
      `Every option has an environment variable (named under each option); a flag wins over its variable, which wins over the default. ${def.name} --help and ${def.name} COMMAND --help print the same settings.`,
    ),
  );
  out.push('.SH OPTIONS', text(`Of ${def.name} serve, the default command:`));
  out.push(...optionList({ ...commonServeOptions(def.defaultPort), ...def.options }, def.envPrefix));
  for (const [name, command] of commands) {
    out.push('.SH', text(`${def.name.toUpperCase()} ${name.toUpperCase()}`));
    if (command.args) out.push(`.B ${text(`${def.name} ${name}`)}`, text(command.args), '.PP');
    out.push(text(command.description));
    out.push('.SS Options', ...optionList(commandsAs.schemaOf(name, command), def.envPrefix));
    out.push('.SS Exit status', ...exitStatus(commandsAs.exitCodesOf(command)));
  }
  out.push('.SH EXIT STATUS', text(`Of ${def.name} serve (each command's are in its section):`));
  out.push(...exitStatus(SERVE_EXIT_CODES));
  return `${out.join('\n')}\n`;
}

function optionList(schema: Schema, prefix: string): string[] {
  const lines: string[] = [];
  for (const { flag, details } of describeOptions(schema, prefix)) {
    lines.push('.TP', `.B ${text(flag)}`, text(details));
  }
  lines.push('.TP', `.B ${text('--help, -h')}`, text('Print the help and exit.'));
  lines.push('.TP', `.B ${text('--version')}`, text('Print the version and exit.'));
  lines.push('.TP', `.B ${text('--man')}`, text('Print this manual page and exit.'));
  return lines;
}

function exitStatus(codes: Readonly<Record<number, string>>): string[] {
  const lines: string[] = [];
  for (const [code, meaning] of Object.entries(codes).sort(([a], [b]) => Number(a) - Number(b))) {
    lines.push('.TP', `.B ${code}`, text(meaning));
  }
  return lines;
}

function firstSentence(description: string): string {
  const end = description.search(/[.:](\s|$)/);
  return end === -1 ? description : description.slice(0, end);
}

/**
 * Text for a roff line (groff(7)): a backslash is written `\e`; a line that starts with `.` or `'` would be read as a
 * request, so it gets the zero-width `\&` first; `-` becomes `\-`, the minus sign man pages use for options (groff
 * would print a hyphen, which a reader cannot paste into a shell).
 */
function text(value: string): string {
  const escaped = value.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

function quote(value: string): string {
  return `"${value.replace(/"/g, '\\(dq')}"`;
}
