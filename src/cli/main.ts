#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { isPdpError } from '../errors/pdp-error.js';
import { COMMANDS, usage } from './commands.js';

/** `agent-pdp <command> [options]`: adapts argv to the modules; no business rules live here. */
async function main(argv: string[]): Promise<number> {
  const words = argv.filter((a) => !a.startsWith('-'));
  const name = [words[0], words[1]].filter(Boolean).join(' ');
  const command = COMMANDS.find((c) => c.name === name) ?? COMMANDS.find((c) => c.name === words[0]);
  if (!command || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return command || argv.includes('--help') || argv.includes('-h') ? 0 : 2;
  }
  const rest = argv.slice(argv.indexOf(command.name.split(' ').at(-1) ?? '') + 1);
  const { values, positionals } = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
  return command.run(values as Record<string, string | boolean | undefined>, positionals);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isPdpError(err)) {
      process.stderr.write(`agent-pdp: ${err.code}: ${err.message}\n`);
      for (const d of err.details) {
        const where = d.file ? `${d.file}${d.line ? `:${d.line}` : ''}${d.column ? `:${d.column}` : ''} ` : '';
        process.stderr.write(`  ${where}${d.path}: ${d.message}\n`);
      }
    } else {
      process.stderr.write(`agent-pdp: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
