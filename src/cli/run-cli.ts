import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeError, formatErrorDetail, isPdpError } from '../errors/pdp-error.js';
import { COMMANDS, usage, type Command } from './commands.js';
import { UsageError } from './usage-error.js';

/**
 * `agent-pdp <command> [options]` as a function of argv: dispatch, `--help` (global or per command), `--version`,
 * and errors printed as `code: message` with their details. Resolves with the exit code: 0 done, 1 failed, 2 usage,
 * 3 a decision that is not an allow (`decide`).
 */
export async function runCli(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(`agent-pdp ${version()}\n`);
    return 0;
  }
  const words = argv.filter((a) => !a.startsWith('-'));
  const name = [words[0], words[1]].filter(Boolean).join(' ');
  const command = COMMANDS.find((c) => c.name === name) ?? COMMANDS.find((c) => c.name === words[0]);
  const help = argv.includes('--help') || argv.includes('-h');
  if (!command) {
    process.stdout.write(usage());
    return help || argv.length === 0 ? 0 : 2;
  }
  if (help) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  try {
    const rest = argv.slice(argv.indexOf(command.name.split(' ').at(-1) ?? '') + 1);
    const { values, positionals } = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
    return await command.run(values as Record<string, string | boolean | undefined>, positionals);
  } catch (err) {
    if (isPdpError(err)) {
      process.stderr.write(`agent-pdp: ${err.code}: ${err.message}\n`);
      for (const d of err.details) process.stderr.write(`  ${formatErrorDetail(d)}\n`);
      if (err instanceof UsageError) return 2;
    } else {
      const message = err instanceof Error ? err.message : describeError(err);
      process.stderr.write(`agent-pdp: ${message}\n`);
      // parseArgs' refusals (an unknown option, a missing value) are usage errors: show the command's options.
      if ((err as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(commandHelp(command));
        return 2;
      }
    }
    return 1;
  }
}

/** One command's usage: its summary and every option it takes. */
export function commandHelp(command: Command): string {
  const options = Object.entries(command.options).map(
    ([name, o]) => `  --${name}${o.short ? `, -${o.short}` : ''}${o.type === 'string' ? ' VALUE' : ''}`,
  );
  return `usage: agent-pdp ${command.name} [options]\n\n  ${command.summary}\n${options.length > 0 ? `\noptions:\n${options.join('\n')}\n` : ''}`;
}

/** The version of the installed package (package.json two folders up from this file, in src/ and in dist/ alike). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
