#!/usr/bin/env node
import { parseServerArguments, runServer, SERVER_USAGE, versionLine } from './server-command.js';
import { parseStatusArguments, runStatus, STATUS_USAGE } from './status-command.js';
import { UsageError } from './usage-error.js';

const USAGE = `Usage: nestjs-gearman <command> [options]

Commands:
  server    run a gearmand-compatible Gearman job server (see: nestjs-gearman server --help);
            flags given without a command mean \`server\`
  status    show a job server's functions and workers (see: nestjs-gearman status --help)
`;

/** The usage shown with a bad command line. */
let usage = SERVER_USAGE;

async function main(argv: string[]): Promise<number> {
  // Flags alone mean `server`, so a gearmand command line works with the program name swapped.
  const serverFlagsOnly = argv.length > 0 && argv[0].startsWith('-') && !['-h', '--help', '-V', '--version'].includes(argv[0]);
  const [command, ...rest] = serverFlagsOnly ? ['server', ...argv] : argv;
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${USAGE}\n${SERVER_USAGE}`);
    return 0;
  }
  if (command === '-V' || command === '--version') {
    process.stdout.write(versionLine());
    return 0;
  }
  if (command === 'status') {
    usage = STATUS_USAGE;
    const parsed = parseStatusArguments(rest);
    if (parsed === 'help') {
      process.stdout.write(STATUS_USAGE);
      return 0;
    }
    return runStatus(parsed);
  }
  if (command !== 'server') {
    process.stderr.write(`${command === undefined ? 'No command given' : `Unknown command ${JSON.stringify(command)}`}\n\n${USAGE}`);
    return 2;
  }
  const parsed = parseServerArguments(rest);
  if (parsed === 'help') {
    process.stdout.write(SERVER_USAGE);
    return 0;
  }
  if (parsed === 'version') {
    process.stdout.write(versionLine());
    return 0;
  }
  await runServer(parsed);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    if (error instanceof UsageError) {
      process.stderr.write(`nestjs-gearman: ${error.message}\n\n${usage}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`nestjs-gearman: ${error.message}\n`);
      process.exitCode = 1;
    }
  },
);
