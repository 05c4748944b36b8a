// Child processes of the benches that are TypeScript modules (speakers, tight loops): run through tsx,
// with an IPC channel for their commands and results, and the parent's stdout and stderr.
import { fork, type ChildProcess } from 'node:child_process';

/** tsx's loader, for `node --import` in child processes. */
export const TSX_IMPORT: string = import.meta.resolve('tsx');

export function forkTsProcess(file: string): ChildProcess {
  return fork(file, [], { execArgv: ['--import', TSX_IMPORT], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}
