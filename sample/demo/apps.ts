import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ReadyMessage } from '../shared/ready.js';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** Every app process still alive: none outlives the runner, however it ends. */
const alive = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of alive) child.kill('SIGTERM');
});

/** One sample app running as its own Node process. */
export interface RunningApp {
  readonly name: ReadyMessage['app'];
  readonly ready: ReadyMessage;
  readonly process: ChildProcess;
  /** SIGTERM (Nest's shutdown hooks run), then waits for the exit; SIGKILL if it takes too long. */
  stop(): Promise<void>;
}

/**
 * Starts `<name>/main.js` from the compiled sample and resolves with what it reports once it is
 * ready. Its log lines are printed with the app's name in front; until it is ready, only warnings
 * and errors (Nest's start-up chatter is left out).
 */
export function startApp(
  name: ReadyMessage['app'],
  mainFile: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<RunningApp> {
  const colour = process.stdout.isTTY ? {} : { NO_COLOR: '1' };
  const child = fork(mainFile, [], { env: { ...process.env, ...colour, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  alive.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      alive.delete(child);
      resolve(code);
    }),
  );
  let started = false;
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (started || /\b(WARN|ERROR)\b|Error/.test(line)) log(`  [${name}] ${line}`);
    });
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${name} did not start within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    child.on('message', (message: { ready?: ReadyMessage }) => {
      if (!message.ready) return;
      started = true;
      clearTimeout(timer);
      resolve({ name, ready: message.ready, process: child, stop });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready (its output is above)`));
    });
  });
}
