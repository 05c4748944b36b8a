// Starts alphacep's vosk-server (websocket/asr_server.py, unmodified) when it is installed on this
// machine (../shared/peer/vosk-server/setup.sh), for the compatibility test and the bench. CI cannot
// fetch it: callers skip with the reason returned here.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../../src/version.js';
import { freePort } from '../kit/free-port.js';

export interface VoskServerInstall {
  /** serve.sh of ../shared/peer/vosk-server. */
  serveScript: string;
  /** Its WORK directory (vosk-server and vosk-api checked out, libvosk.so). */
  workDir: string;
}

/** The installed vosk-server, or a sentence saying why there is none (VOSK_SERVER_WORK, VOSK_SERVER_SERVE override). */
export function findVoskServer(): VoskServerInstall | string {
  const peerDir = resolve(PROJECT_ROOT, '..', 'shared', 'peer', 'vosk-server');
  const serveScript = process.env.VOSK_SERVER_SERVE ?? [join(peerDir, 'serve.sh'), '/work/shared/peer/vosk-server/serve.sh'].find((path) => existsSync(path));
  if (serveScript === undefined || !existsSync(serveScript)) return `vosk-server's serve.sh not found (looked in ${peerDir}; set VOSK_SERVER_SERVE)`;
  const candidates = [process.env.VOSK_SERVER_WORK, join(peerDir, 'work'), '/work/peer-vosk'].filter((dir): dir is string => dir !== undefined);
  const workDir = candidates.find((dir) => existsSync(join(dir, 'vosk-server', 'websocket', 'asr_server.py')));
  if (workDir === undefined) return `vosk-server is not installed (run ../shared/peer/vosk-server/setup.sh; looked in ${candidates.join(', ')})`;
  return { serveScript, workDir };
}

export { freePort };

export interface RunningVoskServer {
  url: string;
  pid: number;
  stop(): void;
}

/** Starts vosk-server on `modelDir` (VOSK_SAMPLE_RATE=16000, serve.sh's choice) and resolves once it listens. */
export async function startVoskServer(install: VoskServerInstall, modelDir: string, logFile: string, env: Record<string, string> = {}): Promise<RunningVoskServer> {
  const port = await freePort();
  const child = spawn(install.serveScript, [modelDir, String(port), logFile], { env: { ...process.env, ...env, WORK: install.workDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((ok) => child.on('exit', ok));
  const pid = Number(stdout.trim());
  if (code !== 0 || !Number.isInteger(pid) || pid <= 0) throw new Error(`vosk-server did not start: ${stderr.trim()}`);
  return {
    url: `ws://127.0.0.1:${port}`,
    pid,
    stop: () => {
      try {
        // serve.sh started it with setsid: its own process group.
        process.kill(-pid, 'SIGTERM');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    },
  };
}
