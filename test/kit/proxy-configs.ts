// The SHIPPED proxy configs (deploy/haproxy.cfg, deploy/nginx-cluster.conf) pointed at loopback ports:
// only their bind/listen and server lines are rewritten (the compose names voxgate-1/voxgate-2 do not
// resolve outside compose); every other line is the one operators deploy. Shared by
// test/cluster/proxy.test.ts and the load test's cluster setups (bench/load/cluster.ts), so both run the
// same file the same way.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/version.js';

export const HAPROXY = process.env.HAPROXY ?? '/usr/sbin/haproxy';
export const NGINX = process.env.NGINX ?? '/usr/sbin/nginx';

/** HAProxy logs this once its listener accepts connections (see haproxyArgs). */
export const HAPROXY_READY = /Loading success\./;

export interface ProxiedNode {
  /** The server name in the shipped file: voxgate-1, voxgate-2. */
  name: string;
  port: number;
  /** The node's NODE_AGENT_PORT (nodes on one host cannot share 8001). */
  agentPort: number;
}

/**
 * deploy/haproxy.cfg with its bind and server lines pointed at loopback; every other line as shipped. A
 * server line naming no running node is an error, unless `dropOthers` (a setup with fewer nodes than the
 * file names, e.g. the load test's `1+haproxy`): then it is commented out.
 */
export function haproxyConfigFor(shipped: string, port: number, nodes: readonly ProxiedNode[], options: { dropOthers?: boolean } = {}): string {
  let servers = 0;
  const config = shipped
    .replace(/^(\s*)bind \*:80$/m, `$1bind 127.0.0.1:${port}`)
    .replace(/^(\s*)server (voxgate-\d+) \S+ (.*)$/gm, (line, indent: string, name: string) => {
      const node = nodes.find((candidate) => candidate.name === name);
      if (node === undefined) {
        if (options.dropOthers) return `${indent}# not running here: ${line.trim()}`;
        throw new Error(`deploy/haproxy.cfg names ${name}, which is not running here`);
      }
      servers++;
      // The loopback address replaces compose's DNS name (so no resolvers); both nodes share one host, so
      // each gets its own agent port.
      return `${indent}server ${name} 127.0.0.1:${node.port} check agent-port ${node.agentPort}`;
    });
  if (!config.includes(`bind 127.0.0.1:${port}`) || servers !== nodes.length) {
    throw new Error(`deploy/haproxy.cfg no longer has the bind line and ${nodes.length} server lines this rewrite expects (found ${servers})`);
  }
  return config;
}

/** Writes the rewritten deploy/haproxy.cfg into a fresh temporary directory; returns the file's path. */
export function writeHaproxyConfig(port: number, nodes: readonly ProxiedNode[], options: { dropOthers?: boolean } = {}): string {
  const file = join(mkdtempSync(join(tmpdir(), 'voxgate-haproxy-')), 'haproxy.cfg');
  writeFileSync(file, haproxyConfigFor(readFileSync(join(PROJECT_ROOT, 'deploy/haproxy.cfg'), 'utf8'), port, nodes, options));
  return file;
}

/**
 * HAProxy's command line for a rewritten config. -W -db: master-worker in the foreground, logs on stdout;
 * the master binds the listener before it forks the worker, so HAPROXY_READY means connections are
 * accepted (the worker, a child of the master, does the proxying: measure its CPU there). -n: the shipped
 * maxconn (20000) needs ~40,000 open files, more than a test machine allows. Stop it with SIGTERM: the
 * master then stops its worker and exits.
 */
export function haproxyArgs(configFile: string, maxConnections: number): string[] {
  return ['-W', '-db', '-n', String(maxConnections), '-f', configFile];
}

/** deploy/nginx-cluster.conf with its listen and upstream server lines pointed at loopback. */
export function nginxConfigFor(shipped: string, port: number, nodes: ReadonlyArray<{ name: string; port: number }>): string {
  let servers = 0;
  const config = shipped
    .replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`)
    .replace(/^(\s*)server (voxgate-\d+):\d+ /gm, (_line, indent: string, name: string) => {
      const node = nodes.find((candidate) => candidate.name === name);
      if (node === undefined) throw new Error(`deploy/nginx-cluster.conf names ${name}, which is not running here`);
      servers++;
      return `${indent}server 127.0.0.1:${node.port} `;
    });
  if (!config.includes(`listen 127.0.0.1:${port};`) || servers !== nodes.length) {
    throw new Error(`deploy/nginx-cluster.conf no longer has the listen line and ${nodes.length} server lines this rewrite expects (found ${servers})`);
  }
  return config;
}
