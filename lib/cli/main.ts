#!/usr/bin/env node
import { parseServerArguments, runServer, SERVER_USAGE, UsageError } from './server-command.js';

const USAGE = `Usage: nestjs-gearman <command> [options]

Commands:
  server    run a gearmand-compatible Gearman job server (see: nestjs-gearman server --help)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${USAGE}\n${SERVER_USAGE}`);
    return 0;
  }
  if (command !== 'server') {
    process.stderr.write(`${command === undefined ? 'No command given' : `Unknown command ${JSON.stringify(command)}`}\n\n${USAGE}`);
    return 2;
  }
  const options = parseServerArguments(rest);
  if (options === 'help') {
    process.stdout.write(SERVER_USAGE);
    return 0;
  }
  await runServer(options);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    if (error instanceof UsageError) {
      process.stderr.write(`nestjs-gearman: ${error.message}\n\n${SERVER_USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`nestjs-gearman: ${error.message}\n`);
      process.exitCode = 1;
    }
  },
);
