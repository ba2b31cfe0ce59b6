// Every process the harness starts goes through here: each gets its own process group, so a server and its
// workers (or taskset and what it runs) die together, and killAll() runs on any exit path, failures included.
import { spawn } from 'node:child_process';

const live = new Set();

export function startProcess(command, args, { stdio = ['ignore', 'ignore', 'ignore'], cwd } = {}) {
  const child = spawn(command, args, { stdio, cwd, detached: true });
  live.add(child);
  child.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (error) => {
      live.delete(child);
      resolve({ code: null, signal: null, error });
    });
  });
  return child;
}

/** SIGKILL the process group and wait for the leader (bounded: 5 s). */
export async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 1000);
  await Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  clearTimeout(timer);
  killGroup(child, 'SIGKILL'); // workers that outlived their leader
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group already gone
  }
}

export function killAll() {
  for (const child of live) killGroup(child, 'SIGKILL');
}

/** For the runner's own process: no child outlives it, whatever way it ends. */
export function killAllOnExit() {
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}
