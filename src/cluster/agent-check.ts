import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import type { NodeEntry } from './node-registry.js';

/**
 * HAProxy's agent check (`agent-check agent-port N`): HAProxy connects, this answers one line and closes.
 * A node that is ready answers `up ready <weight>%`, its weight falling with its load (live streams over
 * its stream limit), so leastconn prefers the emptier node among equals; a full, draining or unregistered
 * node answers `drain` (weight 0: no new connections, open ones stay). /readyz says the same to plain
 * health checks (deploy/haproxy.cfg uses both).
 */
export function agentLine(entry: NodeEntry, readiness: { ready: boolean }): string {
  if (!readiness.ready) return 'drain\n';
  // Never 0% while ready: 0 would mean drain.
  const weight = Math.max(1, Math.round((1 - entry.load) * 100));
  return `up ready ${weight}%\n`;
}

export class AgentCheckServer {
  readonly #server: Server;

  constructor(line: () => string) {
    this.#server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end(line());
    });
  }

  /** Listens; resolves with the bound port (0 picks one). */
  async listen(host: string, port: number): Promise<number> {
    this.#server.listen(port, host);
    await once(this.#server, 'listening');
    return (this.#server.address() as { port: number }).port;
  }

  close(): void {
    this.#server.close();
  }
}
