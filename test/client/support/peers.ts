import { ChildProcess, execFile, spawn } from 'node:child_process';
import { adminCommand } from './admin.js';
import { waitFor } from './wait.js';

export interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded), collecting its output. */
export function run(command: string, args: string[], timeoutMs = 10_000): Promise<Output> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running peer worker, killed by stop(). */
export interface PeerWorker {
  stop(): Promise<void>;
}

/** Starts a peer worker and waits until the server lists it for the function. */
export async function startPeerWorker(port: number, functionName: string, command: string, args: string[]): Promise<PeerWorker> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${command} exited: ${stderr}`);
      const workers = await adminCommand(port, 'workers');
      return workers.some((line) => line.split(' : ')[1]?.split(' ').includes(functionName));
    }, `${command} to register ${functionName}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

export const PERL_WORKER = `
use strict; use warnings;
use Gearman::Worker;
my ($server, $function) = @ARGV;
my $worker = Gearman::Worker->new(job_servers => [$server]);
$worker->register_function($function => sub { my $arg = $_[0]->arg; return uc($arg) . " from perl" });
$worker->work while 1;
`;

export const PERL_CLIENT = `
use strict; use warnings;
use Gearman::Client;
my ($server, $function, $data) = @ARGV;
my $client = Gearman::Client->new(job_servers => [$server]);
my $result = $client->do_task($function => $data, { timeout => 10 });
if (defined $result) { print $$result; exit 0 } else { print STDERR "job failed\\n"; exit 3 }
`;
